// Package namesys names a log: IPNS records made and signed on the
// writer's machine with boxo/ipns (V2 signatures only), checked against the
// name on the reader's side, and stored or fetched through a one-method
// Publisher or Resolver.
//
//	raw, err := namesys.NewRecord(sk, headCID, seq, eol, ttl)
//	err = publisher.Publish(ctx, name, raw)
//	rec, err := namesys.Resolve(ctx, resolver, name, time.Now())
//
// A Resolver returns bytes; nothing it returns is trusted until Parse has
// validated the signature against the name, the expiry and the value.
package namesys
