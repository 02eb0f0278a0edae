// Package deliver is the delivery attempt an MTA embeds: one message to
// the recipients of one domain, through the smtptls Decision applied
// exactly.
//
// Client.Deliver evaluates the domain (DANE, MTA-STS, overrides,
// REQUIRETLS), tries the hosts in decision order and each host's
// validated addresses in order (at most Client.MaxAddrs), runs one SMTP
// session per address (greeting, EHLO, STARTTLS with
// Host.TLSConfigFor, EHLO, MAIL, RCPT, DATA, QUIT), records every session
// and every unusable host to TLS-RPT, and returns one outcome per
// recipient: Delivered, Deferred or Bounced, with a reply code, an
// enhanced status code and a bounded, escaped diagnostic. The error it
// returns is only for misuse; an MTA turns Deferred into a retry and
// Bounced into a DSN, and sets Message.Final on its last attempt so that
// an MTA-STS failure is rechecked before it becomes a bounce (RFC 8461 5).
//
// What bounces: a null MX (5.1.10), NXDOMAIN (5.1.2), a 5xx reply, a
// REQUIRETLS message no host qualifies for (5.7.30), a message needing
// SMTPUTF8 or 8BITMIME sent to a server without it (5.6.7, 5.6.3).
// Everything else defers: DNS failures, unusable hosts, TLS and
// authentication failures, lost connections, 4xx replies.
//
// # The SMTP client
//
// The session runs on a small client written on net/textproto and
// crypto/tls, not on github.com/emersion/go-smtp, for two reasons:
//
//   - go-smtp cannot send EHLO with the caller's name, look at the
//     extensions and then run STARTTLS on the same connection (its
//     client starts TLS only on a fresh connection), so a session built on
//     it connects twice, and the second time sends EHLO with another name;
//   - go-smtp sets its own deadline around every command and clears it
//     afterwards, so a deadline set once from the caller's context is lost:
//     a stalling server can hold an attempt for minutes past its context.
//
// Here every stage (connect, greeting, EHLO, STARTTLS and the handshake,
// MAIL, each RCPT, DATA, each block of the message, the final reply) has
// the deadline min(context deadline, stage timeout) of Client.Timeouts
// (RFC 5321 4.5.3.2 defaults), and the end of the context closes the
// connection at once. Every server reply is bounded (2048 bytes a line,
// 100 lines), and server text reaches errors and RcptResult.Text only
// escaped (no line break, NUL or terminal escape survives) and cut to
// about 320 bytes, as every package of the module formats untrusted text.
package deliver
