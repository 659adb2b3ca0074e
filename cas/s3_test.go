package cas_test

import (
	"context"
	"testing"

	"rlog/cas"
	"rlog/cas/castest"
	"rlog/internal/miniotest"
)

func TestS3Store(t *testing.T) {
	srv := miniotest.Start(t)
	srv.Bucket(t, "blocks", false)
	s, err := cas.OpenS3("s3://blocks/some/prefix/", srv.Config())
	if err != nil {
		t.Fatal(err)
	}
	castest.Run(t, s)

	// Each block is written once: a second upload writes nothing.
	ctx := context.Background()
	c, blks, err := cas.PayloadBlocks([]byte("written once"))
	if err != nil {
		t.Fatal(err)
	}
	if n, _, err := s.PutNew(ctx, blks); err != nil || n != 1 {
		t.Fatalf("first upload: %d written, %v", n, err)
	}
	if n, _, err := s.PutNew(ctx, blks); err != nil || n != 0 {
		t.Fatalf("second upload: %d written, %v", n, err)
	}
	held, err := s.Blocks(ctx)
	if _, ok := held[c]; err != nil || !ok || s.BlockKey(c) != "some/prefix/ipfs/"+c.String() {
		t.Fatalf("listing: %v, %v; key %s", held, err, s.BlockKey(c))
	}
}

func TestParseS3URL(t *testing.T) {
	for _, tc := range []struct{ in, bucket, prefix string }{
		{"s3://b", "b", ""},
		{"s3://b/", "b", ""},
		{"s3://b/p/q/", "b", "p/q"},
	} {
		b, p, err := cas.ParseS3URL(tc.in)
		if err != nil || b != tc.bucket || p != tc.prefix {
			t.Errorf("%s: %q %q %v", tc.in, b, p, err)
		}
	}
	for _, bad := range []string{"s3://", "s3:///p", "http://b/p", "b/p"} {
		if _, _, err := cas.ParseS3URL(bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
	if _, err := cas.OpenS3("s3://b", cas.S3Config{Endpoint: "ftp://x"}); err == nil {
		t.Error("an ftp endpoint: no error")
	}
	env := map[string]string{"AWS_ENDPOINT_URL": "http://e", "AWS_DEFAULT_REGION": "r", "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}
	if cfg := cas.S3ConfigFromEnv(func(k string) string { return env[k] }); cfg != (cas.S3Config{Endpoint: "http://e", Region: "r", AccessKey: "k", SecretKey: "s"}) {
		t.Errorf("from the environment: %+v", cfg)
	}
}
