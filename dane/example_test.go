package dane_test

import (
	"context"
	"fmt"

	"github.com/smtptls/smtptls/dane"
	"github.com/smtptls/smtptls/smtptlstest"
)

func ExampleLookup() {
	w := smtptlstest.NewWorld()
	defer w.Close()
	z := w.AddZone("example.test", smtptlstest.ZoneConfig{Signing: smtptlstest.NSEC})
	z.MustAdd("mx A 127.0.0.10",
		"_25._tcp.mx TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")

	p, err := dane.Lookup(context.Background(), w.Resolver(), "MX.example.test.", 25)
	if err != nil {
		fmt.Println("defer: the host must not be used:", err)
		return
	}
	fmt.Println(p.Level, p.Base, p.TLSAName, len(p.Records))
	// Output: authenticate mx.example.test _25._tcp.mx.example.test 1
}
