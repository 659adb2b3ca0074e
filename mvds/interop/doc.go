// Package interop holds tests that run rlog's MVDS node in one group with
// the two deployed reference implementations, vacp2p/mvds (1..4
// numbering) and status-im/mvds (the specification's 5001.. numbering, the
// revision status-go pins), through a byte bridge: every payload crosses
// as the bytes each implementation writes and reads. It has no code of
// its own; see interop_test.go. Run it with:
//
//	go test -race ./mvds/interop
//	go test -run TestMixedGroup -v ./mvds/interop   # one mixed group, logged
package interop
