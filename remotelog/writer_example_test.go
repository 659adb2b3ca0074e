package remotelog_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"rlog/remotelog"
)

// newExampleRepo makes a repo in a new folder under dir.
func newExampleRepo(dir string) *remotelog.Repo {
	cfg, _ := remotelog.DefaultConfig("paged")
	if _, err := remotelog.Init(dir, cfg); err != nil {
		log.Fatal(err)
	}
	repo, err := remotelog.Open(dir)
	if err != nil {
		log.Fatal(err)
	}
	return repo
}

// A writer appends (durable when Append returns) and publishes: what was
// appended becomes readable under the log's name, in pages.
func ExampleWriter() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "rlog-example-writer")
	defer os.RemoveAll(dir)
	repo := newExampleRepo(filepath.Join(dir, "w"))
	defer repo.Close()
	w, err := repo.Writer(nil, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close()

	out, err := w.Append(ctx, repo.DefaultGroup(), [][]byte{[]byte("one"), []byte("two")})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("appended", out[0].Seq, out[1].Seq)
	res, err := w.Publish(ctx, remotelog.PublishOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("published", res.Messages, "messages in", res.Pages, "page, record", res.RecordSeq)
	w.Append(ctx, repo.DefaultGroup(), [][]byte{[]byte("three")})
	res, _ = w.Publish(ctx, remotelog.PublishOptions{})
	fmt.Println("published", res.New, "new, record", res.RecordSeq)
	// Output:
	// appended 1 2
	// published 2 messages in 1 page, record 1
	// published 1 new, record 2
}

// A reader keeps its cursor between catch-ups and receives only what is
// new, each message once.
func ExampleCatchUp() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "rlog-example-reader")
	defer os.RemoveAll(dir)
	repo := newExampleRepo(filepath.Join(dir, "w"))
	w, _ := repo.Writer(nil, nil)
	publish := func(bodies ...string) {
		var bs [][]byte
		for _, b := range bodies {
			bs = append(bs, []byte(b))
		}
		w.Append(ctx, repo.DefaultGroup(), bs)
		if _, err := w.Publish(ctx, remotelog.PublishOptions{}); err != nil {
			log.Fatal(err)
		}
	}
	publish("one", "two")

	// The reader has the name and a source: here the writer's folder (a
	// gateway, a Kubo daemon or a backup file read the same way).
	src := repo // a repo is a Source; OpenSource opens one by path
	var cur remotelog.Cursor
	read := func() {
		next, st, err := remotelog.CatchUp(ctx, src, repo.Name(), cur, remotelog.ReadOptions{}, func(m remotelog.Message) error {
			fmt.Println(m.Seq, string(m.Body))
			return nil
		})
		if err != nil {
			log.Fatal(err)
		}
		cur = next
		fmt.Println("new:", st.Messages)
	}
	read()
	publish("three")
	read()
	read()
	w.Close()
	repo.Close()
	// Output:
	// 1 one
	// 2 two
	// new: 2
	// 3 three
	// new: 1
	// new: 0
}
