package mtasts_test

import (
	"context"
	"fmt"
	"net/http"

	"github.com/smtptls/smtptls/mtasts"
	"github.com/smtptls/smtptls/smtptlstest"
)

// ExampleFetchTransport fetches a policy with the transport a Client uses
// by default, here trusting a test world's CA and dialling its servers on
// loopback instead of the system roots and the Internet.
func ExampleFetchTransport() {
	w := smtptlstest.NewWorld()
	defer w.Close()
	w.AddZone("example.com", smtptlstest.ZoneConfig{})
	w.SetPolicy("example.com", smtptlstest.Policy{
		Body: "version: STSv1\nmode: enforce\nmx: mx1.example.com\nmax_age: 86400\n",
	})

	hc := &http.Client{Transport: &mtasts.FetchTransport{
		RootCAs:     w.CA().Pool(),
		DialContext: w.DialContext,
	}}
	p, err := mtasts.Fetch(context.Background(), hc, "example.com")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Mode, p.MX)
	// Output: enforce [mx1.example.com]
}
