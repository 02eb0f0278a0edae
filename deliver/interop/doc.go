// Package interop holds the interop test of package deliver with a real
// Postfix smtpd as the receiving server. The test is behind the build tag
// "postfix" and runs with
//
//	bash deliver/interop.sh
//
// (as root; it installs Debian's postfix with apt-get when missing).
package interop
