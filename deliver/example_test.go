package deliver_test

import (
	"bytes"
	"context"
	"fmt"
	"log"

	"github.com/smtptls/smtptls/deliver"
	"github.com/smtptls/smtptls/smtptlstest"
	"github.com/smtptls/smtptls/tlsrpt"
)

// The embedding of README.md "Using it", line for line (TestREADME checks
// it), against an offline kit world: one delivery attempt, then one
// branch per recipient outcome.
func Example() {
	// README: begin
	w := smtptlstest.NewWorld() // an offline world; in production, leave
	defer w.Close()             // Evaluator and Dial nil (the zero values)
	w.AddDomain("example.org", smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity})

	agg := &tlsrpt.Aggregator{} // TLS-RPT: flushed and submitted daily
	client := &deliver.Client{Evaluator: w.Evaluator(), Dial: w.DialContext,
		Reports: agg, HelloName: "mx.sender.example"}
	msg := []byte("From: alice@sender.example\r\nSubject: hi\r\n\r\nHello.\r\n")
	res, err := client.Deliver(context.Background(), &deliver.Message{
		From: "alice@sender.example", To: []string{"bob@example.org"},
		Body: bytes.NewReader(msg), Size: int64(len(msg)),
		Final: false, // true on the last try before a bounce: MTA-STS is rechecked
	})
	if err != nil {
		log.Fatal(err) // misuse only: no recipient, several domains, nil body
	}
	for _, r := range res.Rcpts {
		switch r.Status {
		case deliver.Delivered: // done
		case deliver.Deferred: // queue for a retry; r.Text says why
		case deliver.Bounced: // DSN with r.Code, r.Enhanced and r.Text
		}
		fmt.Println(r.To, r.Status, r.Enhanced, res.Host, res.Verdict)
	}
	// README: end
	// Output:
	// bob@example.org delivered 2.0.0 mx1.example.org verified
}

// Deliver to a domain whose first MX host strips STARTTLS under DANE: the
// attempt moves on to the second host, and the failure is recorded for
// TLS-RPT.
func ExampleClient_Deliver() {
	w := smtptlstest.NewWorld()
	defer w.Close()
	d := w.AddDomain("dane.example", smtptlstest.Scenario{DANE: smtptlstest.DANEEndEntity, MX: 2})
	d.MX[0].SetConfig(smtptlstest.SMTPConfig{NoSTARTTLS: true})

	c := w.Client()
	body := "Subject: hello\r\n\r\nHi.\r\n"
	res, err := c.Deliver(context.Background(), &deliver.Message{
		From: "a@sender.example", To: []string{"b@dane.example", "c@dane.example"},
		Body: bytes.NewReader([]byte(body)), Size: int64(len(body)),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, t := range res.Tries {
		fmt.Printf("tried %s tls=%v tlsrpt=%q\n", t.Host, t.TLS, t.Result)
	}
	for _, r := range res.Rcpts {
		fmt.Println(r.To, r.Status, "via", res.Host, res.Verdict)
	}
	// Output:
	// tried mx1.dane.example tls=false tlsrpt="starttls-not-supported"
	// tried mx2.dane.example tls=true tlsrpt=""
	// b@dane.example delivered via mx2.dane.example verified
	// c@dane.example delivered via mx2.dane.example verified
}
