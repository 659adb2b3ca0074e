// Package netproxy is an HTTP reverse proxy that measures what a reader
// costs the network: requests, response bytes and sequential rounds, with
// an optional added round trip per request. Tests and benchmarks put it
// between a reader and a gateway (`rlog serve`, Kubo's gateway) to count
// from the outside what the reader says about itself.
//
// A round is a wave of requests as the network sees it: a round starts when
// a request arrives while no other request is in flight, and lasts until
// none is. Requests that overlap in time belong to one round; a reader that
// waits for an answer before asking again makes a new round per request.
//
// The added round trip (RTT) delays each response by RTT before it is
// forwarded, the way a link with that latency delays the first byte.
// A flaky link: CutEvery or CutRate cut responses halfway (the headers
// promise the whole body, half of it is sent, the connection is dropped),
// StallAfter stops answering after a number of requests (each one held
// until its client gives up), and Restart (or RestartEvery) drops every
// connection and refuses new ones for a moment, as a restarting server
// does.
//
// Usage:
//
//	p, err := netproxy.Start("http://127.0.0.1:8080", netproxy.Options{RTT: 50 * time.Millisecond})
//	if err != nil { ... }
//	defer p.Close()
//	// read through p.URL in place of the gateway's address, then:
//	c := p.Counts() // c.Requests, c.Rounds, c.Bytes
//	p.Reset()
package netproxy
