// Package postfixlab runs a private instance of a real Postfix (Debian's
// package) for the interop tests that need one: Postfix as the sending
// MTA through the socketmap policy service (examples/postfix-tlspolicy)
// and as the receiving smtpd for package deliver (deliver/interop).
//
// A lab never touches the machine's Postfix: New makes a temporary
// directory (removed when the test ends) that holds the instance's
// config_directory, queue_directory, data_directory and log file, and the
// instance is started in the foreground (postfix start-fg) and stopped by
// the test's cleanup. Configure writes main.cf and master.cf from the
// lab's fixed part (those directories, logging to a file, no local
// delivery, IPv4, no chroot) and the test's own settings and services.
//
// InNamespaces runs a test again inside new network, mount and PID
// namespaces (unshare(1)), so that Postfix can own port 25 and 53 of a
// private loopback, a test can bind-mount its own files over the
// machine's, and whatever Postfix starts dies with the namespace.
//
// Require skips a test that cannot run here (not root, or Postfix or the
// namespace tools missing), or fails it when SMTPTLS_REQUIRE_PEERS=1 (the
// project's CI sets it, so that CI never passes by skipping Postfix).
// The scripts that run these suites install the Debian packages first.
//
// The package is for tests only: it imports nothing of this module, and
// TestLayering (internal/e2e) checks that only test files import it.
package postfixlab
