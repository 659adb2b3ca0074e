// Package castest is the conformance suite every cas.Store backend passes.
//
// A backend's test runs the suite against a fresh store:
//
//	func TestMyStore(t *testing.T) {
//		s := mystore.Open(t.TempDir())
//		defer s.Close()
//		castest.Run(t, s)
//	}
package castest
