//go:build !unix

package smtptlstest

func newRefuser() (*refuser, error) { return refusedFallback() }
