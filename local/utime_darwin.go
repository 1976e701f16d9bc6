package local

// utimeOmit, as a time given to utimensat, leaves that time unchanged.
// golang.org/x/sys/unix lacks it for macOS; -2 is UTIME_OMIT in macOS's
// <sys/stat.h>.
const utimeOmit = -2
