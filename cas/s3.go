package cas

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3 keeps blocks in an S3-compatible bucket, one object per block at
// PREFIX/ipfs/{cid} holding the raw block, laid out so that the bucket,
// read over plain HTTP, answers as a trustless gateway does for
// /ipfs/{cid}. Objects are written once: a block already there is never
// written again. It trusts nothing it reads: wrap it in Verify.
type S3 struct {
	Client *minio.Client
	Bucket string
	Prefix string // without leading or trailing slash; "" for the bucket's root
	// Uploads is how many blocks Put sends at once; default 16.
	Uploads int
}

// S3Config says how to reach an S3-compatible service. S3ConfigFromEnv
// fills it from the usual AWS environment variables.
type S3Config struct {
	Endpoint     string // http(s)://host[:port] or host[:port] (https); default AWS
	Region       string
	AccessKey    string
	SecretKey    string
	SessionToken string
	// Transport, when set, carries the requests (tests count them);
	// default a clone of http.DefaultTransport.
	Transport http.RoundTripper
}

// S3ConfigFromEnv reads AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_S3),
// AWS_REGION (or AWS_DEFAULT_REGION), AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN.
func S3ConfigFromEnv(getenv func(string) string) S3Config {
	first := func(keys ...string) string {
		for _, k := range keys {
			if v := getenv(k); v != "" {
				return v
			}
		}
		return ""
	}
	return S3Config{
		Endpoint:     first("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
		Region:       first("AWS_REGION", "AWS_DEFAULT_REGION"),
		AccessKey:    getenv("AWS_ACCESS_KEY_ID"),
		SecretKey:    getenv("AWS_SECRET_ACCESS_KEY"),
		SessionToken: getenv("AWS_SESSION_TOKEN"),
	}
}

// ParseS3URL splits s3://BUCKET/PREFIX.
func ParseS3URL(s string) (bucket, prefix string, err error) {
	rest, ok := strings.CutPrefix(s, "s3://")
	if !ok {
		return "", "", fmt.Errorf("cas: %q is not an s3://BUCKET/PREFIX URL", s)
	}
	bucket, prefix, _ = strings.Cut(rest, "/")
	if bucket == "" {
		return "", "", fmt.Errorf("cas: %q names no bucket: give s3://BUCKET/PREFIX", s)
	}
	return bucket, strings.Trim(prefix, "/"), nil
}

// OpenS3 connects to the bucket of an s3://BUCKET/PREFIX URL. It makes no
// request: a bucket that does not exist or refuses access is an error at
// the first read or write.
func OpenS3(rawURL string, cfg S3Config) (*S3, error) {
	bucket, prefix, err := ParseS3URL(rawURL)
	if err != nil {
		return nil, err
	}
	host, secure := "s3.amazonaws.com", true
	if cfg.Endpoint != "" {
		ep := cfg.Endpoint
		if !strings.Contains(ep, "://") {
			ep = "https://" + ep
		}
		u, err := url.Parse(ep)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("cas: S3 endpoint %q: want http(s)://HOST[:PORT]", cfg.Endpoint)
		}
		host, secure = u.Host, u.Scheme == "https"
	}
	var creds *credentials.Credentials
	if cfg.AccessKey != "" || cfg.SecretKey != "" {
		creds = credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken)
	} else {
		creds = credentials.NewStatic("", "", "", credentials.SignatureAnonymous)
	}
	var tr http.RoundTripper = cfg.Transport
	if tr == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 64
		tr = t
	}
	c, err := minio.New(host, &minio.Options{Creds: creds, Secure: secure, Region: cfg.Region, Transport: tr})
	if err != nil {
		return nil, fmt.Errorf("cas: S3 endpoint %s: %w", host, err)
	}
	return &S3{Client: c, Bucket: bucket, Prefix: prefix}, nil
}

// URL is the store's s3://BUCKET/PREFIX.
func (s *S3) URL() string { return "s3://" + strings.TrimRight(s.Bucket+"/"+s.Prefix, "/") }

// Key is the object key of path (such as "ipfs/<cid>") under the prefix.
func (s *S3) Key(path string) string {
	if s.Prefix == "" {
		return path
	}
	return s.Prefix + "/" + path
}

// BlockKey is the object holding block c.
func (s *S3) BlockKey(c cid.Cid) string { return s.Key("ipfs/" + c.String()) }

// Block objects' headers: what a trustless gateway answers for a raw
// block, cached for ever (the name is the hash of the content).
const (
	RawBlockType      = "application/vnd.ipld.raw"
	ImmutableCaching  = "public, max-age=29030400, immutable"
	s3NoSuchKey       = "NoSuchKey"
	s3PreconditionErr = "PreconditionFailed"
)

// IsS3NotFound reports an S3 error for a key that is not there.
func IsS3NotFound(err error) bool {
	var er minio.ErrorResponse
	return errors.As(err, &er) && (er.Code == s3NoSuchKey || er.StatusCode == http.StatusNotFound)
}

// GetObject reads a whole object of at most limit bytes; a missing one is
// an error wrapping ErrNotFound. One GET: the object's size, from the
// response's headers, sizes the buffer before the body is read.
func (s *S3) GetObject(ctx context.Context, key string, limit int64) ([]byte, error) {
	b, err := s.getObject(ctx, key, limit)
	if IsS3NotFound(err) {
		return nil, fmt.Errorf("cas: %s: get %s: %w", s.URL(), key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("cas: %s: get %s: %w", s.URL(), key, err)
	}
	return b, nil
}

func (s *S3) getObject(ctx context.Context, key string, limit int64) ([]byte, error) {
	body, info, _, err := minio.Core{Client: s.Client}.GetObject(ctx, s.Bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, err
	}
	defer body.Close()
	if info.Size < 0 { // no length given
		b, err := io.ReadAll(io.LimitReader(body, limit+1))
		if err == nil && int64(len(b)) > limit {
			err = fmt.Errorf("object over %d bytes", limit)
		}
		return b, err
	}
	if info.Size > limit {
		return nil, fmt.Errorf("object of %d bytes, over %d", info.Size, limit)
	}
	b := make([]byte, info.Size)
	if _, err := io.ReadFull(body, b); err != nil {
		return nil, err
	}
	return b, nil
}

// PutObject writes b at key with the given headers and checks the
// server's hash of what it stored (the ETag of a single-part upload is its
// MD5) against b's. With once, an object already at key is left as it is
// and PutObject reports written false.
func (s *S3) PutObject(ctx context.Context, key string, b []byte, contentType, cacheControl string, once bool) (written bool, err error) {
	opts := minio.PutObjectOptions{ContentType: contentType, CacheControl: cacheControl, SendContentMd5: true, DisableMultipart: true}
	if once {
		opts.SetMatchETagExcept("*") // If-None-Match: *
	}
	info, err := s.Client.PutObject(ctx, s.Bucket, key, bytes.NewReader(b), int64(len(b)), opts)
	var er minio.ErrorResponse
	if once && errors.As(err, &er) && (er.Code == s3PreconditionErr || er.StatusCode == http.StatusPreconditionFailed) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("cas: %s: put %s: %w", s.URL(), key, err)
	}
	sum := md5.Sum(b)
	if etag := strings.Trim(info.ETag, `"`); etag != "" && !strings.EqualFold(etag, hex.EncodeToString(sum[:])) {
		return false, fmt.Errorf("cas: %s: put %s: the server stored other bytes (ETag %s, MD5 %x)", s.URL(), key, etag, sum)
	}
	return true, nil
}

// Get reads block c.
func (s *S3) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	return s.GetObject(ctx, s.BlockKey(c), maxBlock)
}

// Has reports whether the bucket holds block c.
func (s *S3) Has(ctx context.Context, c cid.Cid) (bool, error) {
	_, err := s.Client.StatObject(ctx, s.Bucket, s.BlockKey(c), minio.StatObjectOptions{})
	if IsS3NotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("cas: %s: has %s: %w", s.URL(), c, err)
	}
	return true, nil
}

// Put uploads blocks not yet in the bucket, several at once.
func (s *S3) Put(ctx context.Context, blks []blocks.Block) error {
	_, _, err := s.PutNew(ctx, blks)
	return err
}

// PutNew uploads blks, several at once, each only if the bucket lacks it,
// and returns how many it wrote and their size.
func (s *S3) PutNew(ctx context.Context, blks []blocks.Block) (int, int64, error) {
	return s.each(ctx, blks, func(ctx context.Context, blk blocks.Block) (bool, error) {
		return s.PutObject(ctx, s.BlockKey(blk.Cid()), blk.RawData(), RawBlockType, ImmutableCaching, true)
	})
}

// Repair reads the object of each of blks, several at once, and writes
// the block again where the object is missing or holds other bytes than
// the block's (blks must be verified: they are the truth). It returns how
// many it wrote and their size.
func (s *S3) Repair(ctx context.Context, blks []blocks.Block) (int, int64, error) {
	return s.each(ctx, blks, func(ctx context.Context, blk blocks.Block) (bool, error) {
		got, err := s.GetObject(ctx, s.BlockKey(blk.Cid()), maxBlock)
		switch {
		case err == nil && bytes.Equal(got, blk.RawData()):
			return false, nil
		case err != nil && !errors.Is(err, ErrNotFound):
			return false, err
		}
		return s.PutObject(ctx, s.BlockKey(blk.Cid()), blk.RawData(), RawBlockType, ImmutableCaching, false)
	})
}

// each runs do on blks, Uploads at once, stops at the first error, and
// counts the blocks, and their bytes, for which do reported a write.
func (s *S3) each(ctx context.Context, blks []blocks.Block, do func(context.Context, blocks.Block) (bool, error)) (int, int64, error) {
	n := s.Uploads
	if n <= 0 {
		n = 16
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	var firstErr error
	written, size := 0, int64(0)
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	for _, blk := range blks {
		sem <- struct{}{}
		mu.Lock()
		failed := firstErr != nil
		mu.Unlock()
		if failed {
			<-sem
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			w, err := do(ctx, blk)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
				cancel()
			}
			if w {
				written++
				size += int64(len(blk.RawData()))
			}
		}()
	}
	wg.Wait()
	return written, size, firstErr
}

// Blocks lists the blocks the bucket holds under the prefix.
func (s *S3) Blocks(ctx context.Context) (map[cid.Cid]struct{}, error) {
	held := map[cid.Cid]struct{}{}
	keys, err := s.List(ctx, "ipfs/")
	for _, k := range keys {
		if c, err := cid.Decode(k); err == nil {
			held[c] = struct{}{}
		}
	}
	return held, err
}

// List returns the names of the objects under PREFIX/dir (dir ends in
// a slash), without PREFIX/dir.
func (s *S3) List(ctx context.Context, dir string) ([]string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p := s.Key(dir)
	var out []string
	for o := range s.Client.ListObjects(ctx, s.Bucket, minio.ListObjectsOptions{Prefix: p, Recursive: true}) {
		if o.Err != nil {
			return out, fmt.Errorf("cas: %s: list %s: %w", s.URL(), p, o.Err)
		}
		out = append(out, strings.TrimPrefix(o.Key, p))
	}
	return out, nil
}

// Delete removes block c; a missing one is not an error.
func (s *S3) Delete(ctx context.Context, c cid.Cid) error {
	if err := s.Client.RemoveObject(ctx, s.Bucket, s.BlockKey(c), minio.RemoveObjectOptions{}); err != nil && !IsS3NotFound(err) {
		return fmt.Errorf("cas: %s: delete %s: %w", s.URL(), c, err)
	}
	return nil
}
