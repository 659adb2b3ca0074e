package remotelog_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/kubo/core/coreiface/options"

	"rlog/cas"
	"rlog/pager"
	"rlog/remotelog"
)

// oneByOne puts every block with its own `block put` request: the way
// publishing would go without a CAR import, for comparison.
type oneByOne struct{ *cas.Kubo }

func (o oneByOne) Put(ctx context.Context, blks []blocks.Block) error {
	for _, b := range blks {
		codec := "raw"
		if b.Cid().Prefix().Codec == 0x71 {
			codec = "dag-cbor"
		} else if b.Cid().Prefix().Codec == 0x70 {
			codec = "dag-pb"
		}
		if _, err := o.API.Block().Put(ctx, bytes.NewReader(b.RawData()), options.Block.CidCodec(codec)); err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkKuboPublish: one publish of 10,000 new messages of 256 B to a
// real daemon, as one CAR import and, for comparison, one request per
// block; in the paged preset (40 page blocks) and the linked one (a page
// and a payload block per message).
func BenchmarkKuboPublish(b *testing.B) {
	api := kuboEnv(b, "RLOG_KUBO_API")[0]
	for _, preset := range []string{"paged", "linked"} {
		for _, mode := range []string{"car", "one-by-one"} {
			b.Run(preset+"/"+mode, func(b *testing.B) {
				k := kuboBackend(b, api)
				var st cas.Store = k.Kubo
				if mode == "one-by-one" {
					st = oneByOne{k.Kubo}
				}
				pol, _ := pager.Preset(preset)
				blocksPut := 0
				for b.Loop() {
					b.StopTimer()
					w := kuboWriterOn(b, st, k, pol)
					bodies := make([][]byte, 10_000)
					for i := range bodies {
						bodies[i] = []byte(fmt.Sprintf("%0256d", i))
					}
					if _, err := w.Append(context.Background(), group, bodies); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					res, err := w.Publish(context.Background(), remotelog.PublishOptions{})
					if err != nil {
						b.Fatal(err)
					}
					blocksPut = res.Blocks
					b.StopTimer()
					w.Close()
					b.StartTimer()
				}
				b.ReportMetric(float64(blocksPut), "blocks")
			})
		}
	}
}

// BenchmarkKuboPublishOne: the latency of publishing one new message.
func BenchmarkKuboPublishOne(b *testing.B) {
	api := kuboEnv(b, "RLOG_KUBO_API")[0]
	k := kuboBackend(b, api)
	pol, _ := pager.Preset("paged")
	w := kuboWriterOn(b, k.Kubo, k, pol)
	ctx := context.Background()
	w.Append(ctx, group, [][]byte{[]byte("first")})
	if _, err := w.Publish(ctx, remotelog.PublishOptions{}); err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		b.StopTimer()
		i++
		w.Append(ctx, group, [][]byte{[]byte(fmt.Sprint("message ", i))})
		b.StartTimer()
		if _, err := w.Publish(ctx, remotelog.PublishOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkKuboCatchUp: a reader catches up 10,000 messages of 256 B
// through a real daemon.
func BenchmarkKuboCatchUp(b *testing.B) {
	api := kuboEnv(b, "RLOG_KUBO_API")[0]
	k := kuboBackend(b, api)
	pol, _ := pager.Preset("paged")
	w := kuboWriterOn(b, k.Kubo, k, pol)
	bodies := make([][]byte, 10_000)
	for i := range bodies {
		bodies[i] = []byte(fmt.Sprintf("%0256d", i))
	}
	ctx := context.Background()
	w.Append(ctx, group, bodies)
	if _, err := w.Publish(ctx, remotelog.PublishOptions{}); err != nil {
		b.Fatal(err)
	}
	var st remotelog.Stats
	for b.Loop() {
		var err error
		_, st, err = remotelog.CatchUp(ctx, k, w.Name(), remotelog.Cursor{}, remotelog.ReadOptions{}, func(remotelog.Message) error { return nil })
		if err != nil || st.Messages != 10_000 {
			b.Fatalf("%d messages, %v", st.Messages, err)
		}
	}
	b.ReportMetric(float64(st.Rounds), "rounds")
	b.ReportMetric(float64(st.Pages), "pages")
}

// BenchmarkKuboGatewayCatchUp: a reader catches up 10,000 messages through
// Kubo's own gateway (?format=raw and ?format=ipns-record).
func BenchmarkKuboGatewayCatchUp(b *testing.B) {
	env := kuboEnv(b, "RLOG_KUBO_API", "RLOG_KUBO_GW")
	k := kuboBackend(b, env[0])
	pol, _ := pager.Preset("paged")
	w := kuboWriterOn(b, k.Kubo, k, pol)
	bodies := make([][]byte, 10_000)
	for i := range bodies {
		bodies[i] = []byte(fmt.Sprintf("%0256d", i))
	}
	w.Append(context.Background(), group, bodies)
	if _, err := w.Publish(context.Background(), remotelog.PublishOptions{}); err != nil {
		b.Fatal(err)
	}
	benchCatchUpFrom(b, env[1], w.Name(), 0)
}
