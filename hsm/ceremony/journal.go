package ceremony

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// runJournal: atmctl journal verify --control ADDR.
func runJournal(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		return usagef("usage: atmctl journal verify --control ADDR")
	}
	fs := newFlags("journal verify")
	control := fs.String("control", "", "the appliance's control endpoint, host:port")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *control == "" {
		return usagef("--control is required")
	}
	c := http.Client{Timeout: 30 * time.Minute} // a million entries take about 15 s
	resp, err := c.Get("http://" + *control + "/journal/verify")
	if err != nil {
		return fmt.Errorf("journal verify: %w", err)
	}
	defer resp.Body.Close()
	var out struct {
		OK      bool   `json:"ok"`
		Entries uint64 `json:"entries"`
		Error   string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return fmt.Errorf("journal verify: the appliance answered %s with no result: %w", resp.Status, err)
	}
	if !out.OK {
		return fmt.Errorf("the electronic journal does not verify: %s", out.Error)
	}
	fmt.Fprintf(stdout, "electronic journal verified: %d entries, head MAC good\n", out.Entries)
	return nil
}
