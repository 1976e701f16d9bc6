package treetest

import (
	"sync"

	"golang.org/x/sys/windows"
)

// UnderWine reports whether the test runs under Wine rather than Windows:
// Wine's ntdll exports wine_get_version, which Windows's does not. Tests
// use it to skip what Wine itself cannot do (symlinks, deep paths), never
// what Windows cannot.
var UnderWine = sync.OnceValue(func() bool {
	return windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil
})
