// Package remotelog replicates a node's message log to content-addressed
// storage and reads other nodes' logs from it: the vac remote log.
//
// A writer keeps a durable local log of MVDS messages in a repo (Init,
// Open), appends to it (Writer.Append, Writer.AppendFile) and publishes it
// (Writer.Publish): the log is cut into DAG-CBOR pages, the pages and large
// payloads are stored as blocks, and a signed IPNS record points the log's
// name at the newest page. The format is in docs/FORMAT.md.
//
// A reader needs only the name (ParseName) and a Source (OpenSource: a
// repo folder, a backup file, a Kubo daemon or any trustless gateway).
// CatchUp delivers, in order, the messages after a Cursor and returns the
// new cursor; Follow keeps doing so as the log grows. Every block hash,
// record signature, page number, sequence number and message id is checked
// before a message is delivered, and a log rewritten under a reader is
// reported as ErrFork, never delivered.
//
// Backup, Restore and Check carry a log as a CAR file and verify it whole;
// Keep holds other writers' logs so they stay readable while those writers
// are offline; Server serves a repo as a trustless gateway.
//
// A writer and a reader:
//
//	name, _ := remotelog.Init(dir, cfg) // cfg from DefaultConfig("paged")
//	repo, _ := remotelog.Open(dir)
//	w, _ := repo.Writer(nil, nil)
//	w.Append(ctx, repo.DefaultGroup(), [][]byte{[]byte("hello")})
//	w.Publish(ctx, remotelog.PublishOptions{})
//
//	src, _ := remotelog.OpenSource(ctx, "http://127.0.0.1:8080")
//	cur, _, err := remotelog.CatchUp(ctx, src, name, remotelog.Cursor{}, remotelog.ReadOptions{},
//		func(m remotelog.Message) error { fmt.Println(m.Seq, string(m.Body)); return nil })
//
// An application embeds a Node: one per repo, owning it, running any mix of
// the gateway, MVDS sync with peers (SyncConfig; peers kept in the repo's
// config with AddPeer, PausePeer, ...), keepers, subscriptions and
// scheduled publishing. While it runs, other processes use the repo through
// its control socket (DialControl), as `ipfs` uses a running daemon:
//
//	node, _ := remotelog.StartNode(ctx, repo, remotelog.NodeConfig{
//		Serve:        "127.0.0.1:8080",
//		Sync:         &remotelog.SyncConfig{Listen: []string{"/ip4/0.0.0.0/tcp/4001"}},
//		PublishEvery: time.Minute,
//	})
//	defer node.Close()
//	node.Append(ctx, nil, [][]byte{[]byte("hi")}) // durable, sent to peers
//	msgs, _ := node.SubscribeChan(friend, src, remotelog.FollowOptions{})
//	for m := range msgs { ... } // verified, each once, across restarts
package remotelog
