package file

import (
	"os"
	"syscall"
	"time"
)

// changeTime returns the inode change time of fi (ctime), which, unlike the
// modification time, no program can set back.
func changeTime(fi os.FileInfo) time.Time {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return time.Unix(st.Ctimespec.Unix())
	}
	return time.Time{}
}
