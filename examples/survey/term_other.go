//go:build !linux

package main

import "os"

// isTerminal reports false: the progress line is shown on Linux only.
func isTerminal(*os.File) bool { return false }
