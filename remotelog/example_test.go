package remotelog_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"rlog/remotelog"
)

// A writer publishes two messages; a reader, given only the name and the
// writer's folder, reads them, verified, and then has nothing new.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "rlog-example")
	defer os.RemoveAll(dir)

	// The writer.
	writerDir := filepath.Join(dir, "writer")
	cfg, _ := remotelog.DefaultConfig("paged")
	name, err := remotelog.Init(writerDir, cfg)
	if err != nil {
		log.Fatal(err)
	}
	repo, err := remotelog.Open(writerDir)
	if err != nil {
		log.Fatal(err)
	}
	w, err := repo.Writer(nil, nil) // the embedded store, the system clock
	if err != nil {
		log.Fatal(err)
	}
	if _, err := w.Append(ctx, repo.DefaultGroup(), [][]byte{[]byte("hello"), []byte("world")}); err != nil {
		log.Fatal(err)
	}
	if _, err := w.Publish(ctx, remotelog.PublishOptions{}); err != nil {
		log.Fatal(err)
	}
	w.Close()
	repo.Close()

	// A reader, with the name as text and the writer's folder as source.
	n, err := remotelog.ParseName(name.String())
	if err != nil {
		log.Fatal(err)
	}
	src, err := remotelog.OpenSource(ctx, writerDir)
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	cur, _, err := remotelog.CatchUp(ctx, src, n, remotelog.Cursor{}, remotelog.ReadOptions{}, func(m remotelog.Message) error {
		fmt.Println(m.Seq, string(m.Body))
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	_, st, err := remotelog.CatchUp(ctx, src, n, cur, remotelog.ReadOptions{}, func(remotelog.Message) error { return nil })
	fmt.Println("new:", st.Messages, err)
	// Output:
	// 1 hello
	// 2 world
	// new: 0 <nil>
}
