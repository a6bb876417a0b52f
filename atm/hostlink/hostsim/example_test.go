package hostsim_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/cardless-atm/cardless/atm/hostlink/hostsim"
)

// Example starts the simulator from the shipped development configuration
// on a fresh database and reads a seeded balance and the day's totals.
func Example() {
	cfg, err := hostsim.LoadConfig(filepath.Join("..", "..", "..", "configs", "hostsim.json"))
	if err != nil {
		fmt.Println(err)
		return
	}
	dir, _ := os.MkdirTemp("", "hostsim-example")
	defer os.RemoveAll(dir)
	cfg.DBPath = filepath.Join(dir, "host.db")

	host, err := hostsim.NewServer(cfg) // listens on 127.0.0.1:0
	if err != nil {
		fmt.Println(err)
		return
	}
	defer host.Close()

	balance, _ := host.Balance("13800000001")
	totals, _ := host.Totals("2025-01-01", "ATM00001")
	fmt.Println("balance:", balance)
	fmt.Printf("totals: %+v\n", totals)
	// Output:
	// balance: 1000000
	// totals: {Count:0 Approved:0 Reversed:0 Net:0}
}
