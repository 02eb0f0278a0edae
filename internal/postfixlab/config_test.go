package postfixlab

import (
	"strings"
	"testing"
)

func TestMainCF(t *testing.T) {
	fixed := Settings{"queue_directory": "/lab/queue", "maillog_file": "/lab/maillog"}
	got, err := mainCF(fixed, Settings{"myhostname": "mx.example.test", "inet_protocols": "all", "mydomain": "", "smtp_tls_CAfile": "/lab/ca.pem"})
	if err != nil {
		t.Fatal(err)
	}
	want := `alias_database = 
alias_maps = 
compatibility_level = 3.6
delay_warning_time = 0
inet_protocols = all
maillog_file = /lab/maillog
mydestination = 
mydomain = 
myhostname = mx.example.test
queue_directory = /lab/queue
relayhost = 
smtp_tls_CAfile = /lab/ca.pem
`
	if got != want {
		t.Errorf("main.cf:\n%s\nwant:\n%s", got, want)
	}
}

func TestMainCFRefuses(t *testing.T) {
	for name, s := range map[string]Settings{
		"a fixed setting":       {"queue_directory": "/elsewhere"},
		"the log file":          {"maillog_file": "/dev/null"},
		"a second line":         {"myhostname": "a\nqueue_directory = /elsewhere"},
		"a carriage return":     {"myhostname": "a\rb"},
		"a name with =":         {"a=b": "c"},
		"a name with a space":   {"my hostname": "x"},
		"a name with a dot":     {"smtp.tls": "x"},
		"an empty name":         {"": "x"},
		"an over-long name":     {strings.Repeat("a", 101): "x"},
		"a name with a newline": {"a\nb": "x"},
	} {
		t.Run(name, func(t *testing.T) {
			if got, err := mainCF(Settings{"queue_directory": "/lab/queue"}, s); err == nil {
				t.Errorf("accepted:\n%s", got)
			}
		})
	}
}

func TestMasterCF(t *testing.T) {
	svc := "127.0.0.1:2525 inet n - n - - smtpd"
	got, err := masterCF([]string{svc})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(lines) != 1+len(baseServices) || lines[0] != svc {
		t.Fatalf("master.cf:\n%s", got)
	}
	for i, s := range baseServices {
		if lines[1+i] != s {
			t.Errorf("line %d = %q, want %q", 2+i, lines[1+i], s)
		}
		// No chroot (the fifth field): see baseServices.
		if f := strings.Fields(s); f[4] != "n" {
			t.Errorf("%s runs chrooted", f[0])
		}
	}
	for _, bad := range []string{"", "   ", " smtpd unix - - n - - smtp", "\tsmtp", "a unix - - n - - smtp\nb unix - - n - - smtp", "a\r"} {
		if got, err := masterCF([]string{bad}); err == nil {
			t.Errorf("%q accepted:\n%s", bad, got)
		}
	}
}
