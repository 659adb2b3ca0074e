package remotelog

// SetCrashPoint makes f run at the steps of a compaction and a publish
// where a crash leaves something to finish (crashAt).
func SetCrashPoint(f func(step string)) { crashPoint = f }
