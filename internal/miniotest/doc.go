// Package miniotest runs a real MinIO server on 127.0.0.1 for tests, with
// throwaway credentials and its own data folder. The binary is
// $RLOG_MINIO, else bin/minio at the module's root (.ci/minio.sh builds
// it). Without it a test is skipped with the reason, and fails when
// CI=true.
//
//	func TestBackupToS3(t *testing.T) {
//		srv := miniotest.Start(t) // skips, or fails with CI=true, without the binary
//		srv.Bucket(t, "logs", false)
//		cfg := srv.Config()       // cas.S3Config for srv.Endpoint()
//		...
//		srv.Restart(t)            // the same data, the server down and back
//	}
package miniotest
