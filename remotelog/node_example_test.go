package remotelog_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"rlog/remotelog"
)

// A writer's node serves its log as a gateway; a reader's node subscribes
// to it there and receives each message once, verified, as it is
// published.
func ExampleNode() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "rlog-example-node")
	defer os.RemoveAll(dir)
	open := func(name string) *remotelog.Repo { return newExampleRepo(filepath.Join(dir, name)) }

	// The writer's node: the gateway on a free port, and its first publish
	// (a gateway serves the embedded store once it exists).
	wrepo := open("writer")
	defer wrepo.Close()
	w, err := wrepo.Writer(nil, nil)
	if err != nil {
		log.Fatal(err)
	}
	w.Append(ctx, wrepo.DefaultGroup(), [][]byte{[]byte("hello")})
	w.Publish(ctx, remotelog.PublishOptions{})
	w.Close()
	writer, err := remotelog.StartNode(ctx, wrepo, remotelog.NodeConfig{Serve: "127.0.0.1:0"})
	if err != nil {
		log.Fatal(err)
	}
	defer writer.Close()

	// The reader's node follows the writer's log through its gateway.
	rrepo := open("reader")
	defer rrepo.Close()
	reader, err := remotelog.StartNode(ctx, rrepo, remotelog.NodeConfig{})
	if err != nil {
		log.Fatal(err)
	}
	defer reader.Close()
	src, err := remotelog.OpenSource(ctx, "http://"+writer.GatewayAddr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	msgs, err := reader.SubscribeChan(wrepo.Name(), src, remotelog.FollowOptions{})
	if err != nil {
		log.Fatal(err)
	}
	m := <-msgs
	fmt.Println(m.Seq, string(m.Body))

	// Appended and published through the node: the gateway pushes the new
	// head to the reader at once.
	if _, err := writer.Append(ctx, nil, [][]byte{[]byte("world")}); err != nil {
		log.Fatal(err)
	}
	if _, err := writer.Publish(ctx); err != nil {
		log.Fatal(err)
	}
	m = <-msgs
	fmt.Println(m.Seq, string(m.Body))
	st := writer.Status()
	fmt.Println("writer:", st.Messages, "messages,", st.Published, "published")
	// Output:
	// 1 hello
	// 2 world
	// writer: 2 messages, 2 published
}
