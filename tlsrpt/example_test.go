package tlsrpt_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/mail"
	"time"

	"github.com/smtptls/smtptls/tlsrpt"
)

// A sender counts sessions as they happen and, after the UTC day ends,
// renders one report per policy domain.
func ExampleAggregator() {
	var agg tlsrpt.Aggregator
	day := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	sts := tlsrpt.Policy{
		Type:    tlsrpt.PolicySTS,
		Domain:  "Example.COM",
		Strings: []string{"version: STSv1", "mode: enforce", "mx: mx.example.com", "max_age: 604800"},
		MXHosts: []string{"mx.example.com"},
	}
	agg.Success(sts, day.Add(9*time.Hour))
	agg.Success(sts, day.Add(10*time.Hour))
	agg.Failure(sts, tlsrpt.FailureDetails{
		ResultType:          tlsrpt.CertificateExpired,
		SendingMTAIP:        "192.0.2.10",
		ReceivingMXHostname: "mx.example.com",
		ReceivingIP:         "198.51.100.25",
	}, day.Add(11*time.Hour))

	// Some time the next day: report and forget the finished days.
	for _, r := range agg.Flush(day.Add(30*time.Hour), "Sender Inc.", "tlsrpt@sender.example") {
		fmt.Println(r.FileName("sender.example", true))
		j, err := r.JSON()
		if err != nil {
			log.Fatal(err)
		}
		var out bytes.Buffer
		json.Indent(&out, j, "", "  ")
		fmt.Println(out.String())
	}
	// Output:
	// sender.example!example.com!1714521600!1714607999!fe651edf6ddae16c.json.gz
	// {
	//   "organization-name": "Sender Inc.",
	//   "date-range": {
	//     "start-datetime": "2024-05-01T00:00:00Z",
	//     "end-datetime": "2024-05-01T23:59:59Z"
	//   },
	//   "contact-info": "tlsrpt@sender.example",
	//   "report-id": "2024-05-01_example.com",
	//   "policies": [
	//     {
	//       "policy": {
	//         "policy-type": "sts",
	//         "policy-string": [
	//           "version: STSv1",
	//           "mode: enforce",
	//           "mx: mx.example.com",
	//           "max_age: 604800"
	//         ],
	//         "policy-domain": "example.com",
	//         "mx-host": [
	//           "mx.example.com"
	//         ]
	//       },
	//       "summary": {
	//         "total-successful-session-count": 2,
	//         "total-failure-session-count": 1
	//       },
	//       "failure-details": [
	//         {
	//           "result-type": "certificate-expired",
	//           "sending-mta-ip": "192.0.2.10",
	//           "receiving-mx-hostname": "mx.example.com",
	//           "receiving-ip": "198.51.100.25",
	//           "failed-session-count": 1
	//         }
	//       ]
	//     }
	//   ]
	// }
}

func ExampleSelectRecord() {
	// The TXT RRset at _smtp._tls.example.com, each record's strings
	// joined.
	txts := []string{
		"v=spf1 -all",
		"v=TLSRPTv1; rua=mailto:tlsrpt@example.com,https://reports.example.com/tlsrpt",
	}
	rec, err := tlsrpt.SelectRecord(txts)
	if err != nil {
		fmt.Println("no reports:", err)
		return
	}
	fmt.Println(rec.Mailto())
	fmt.Println(rec.HTTPS())
	// Output:
	// [tlsrpt@example.com]
	// [https://reports.example.com/tlsrpt]
}

func ExampleMessage_Build() {
	r := &tlsrpt.Report{
		OrganizationName: "Sender Inc.",
		DateRange:        tlsrpt.DateRange{Start: time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2024, 5, 1, 23, 59, 59, 0, time.UTC)},
		ContactInfo:      "tlsrpt@sender.example",
		ReportID:         "2024-05-01_example.com",
		Policies: []tlsrpt.PolicyResult{{
			Policy:  tlsrpt.Policy{Type: tlsrpt.PolicyNoPolicyFound, Domain: "example.com"},
			Summary: tlsrpt.Summary{TotalSuccessfulSessionCount: 7},
		}},
	}
	m := &tlsrpt.Message{
		From: "tlsrpt-noreply@sender.example",
		To:   []string{"tlsrpt@example.com"},
		Date: time.Date(2024, 5, 2, 3, 0, 0, 0, time.UTC),
	}
	raw, err := m.Build(r)
	if err != nil {
		log.Fatal(err)
	}
	// The MTA now DKIM-signs raw and sends it, honouring TLS-Required: No.
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		log.Fatal(err)
	}
	for _, h := range []string{"Subject", "TLS-Report-Domain", "TLS-Report-Submitter", "TLS-Required"} {
		fmt.Printf("%s: %s\n", h, msg.Header.Get(h))
	}
	// Output:
	// Subject: Report Domain: example.com Submitter: sender.example Report-ID: <2024-05-01_example.com@sender.example>
	// TLS-Report-Domain: example.com
	// TLS-Report-Submitter: sender.example
	// TLS-Required: No
}

// Delivering a day's reports to the destinations a domain publishes. The
// TXT lookup is the resolver's job; send stands for the MTA's queue.
func ExampleSubmitter_Submit() {
	var (
		agg    tlsrpt.Aggregator
		sub    tlsrpt.Submitter
		lookup = func(domain string) []string { return nil } // TXT at _smtp._tls.<domain>
		send   = func(msg []byte) error { return nil }       // DKIM-sign and queue
	)
	ctx := context.Background()
	for _, r := range agg.Flush(time.Now(), "Sender Inc.", "tlsrpt@sender.example") {
		rec, err := tlsrpt.SelectRecord(lookup(r.PolicyDomain()))
		if err != nil {
			continue // the domain wants no reports
		}
		for _, uri := range rec.HTTPS() {
			if err := sub.Submit(ctx, uri, &r); err != nil {
				log.Printf("tlsrpt: %v", err)
			}
		}
		if to := rec.Mailto(); len(to) > 0 {
			msg, err := (&tlsrpt.Message{From: "tlsrpt-noreply@sender.example", To: to}).Build(&r)
			if err == nil {
				err = send(msg)
			}
			if err != nil {
				log.Printf("tlsrpt: %v", err)
			}
		}
	}
}
