// Package ledger keeps accounts and transfers between them, with an audit trail.
package ledger

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

var (
	ErrUnknownAccount    = errors.New("unknown account")
	ErrInsufficientFunds = errors.New("insufficient funds")
	ErrInvalidAmount     = errors.New("amount must be positive")
)

// Entry is one line of the audit trail.
type Entry struct {
	At     time.Time
	From   string
	To     string
	Amount int64
	Note   string
}

// Ledger holds balances in cents. It is safe for concurrent use.
type Ledger struct {
	mu       sync.Mutex
	balances map[string]int64
	entries  []Entry
	now      func() time.Time
}

// New returns an empty ledger that stamps entries with now.
func New(now func() time.Time) *Ledger {
	if now == nil {
		now = time.Now
	}
	return &Ledger{balances: make(map[string]int64), now: now}
}

// Open creates an account with an opening balance.
func (l *Ledger) Open(name string, opening int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.balances[name]; ok {
		return fmt.Errorf("account %q already exists", name)
	}
	if opening < 0 {
		return ErrInvalidAmount
	}
	l.balances[name] = opening
	l.entries = append(l.entries, Entry{At: l.now(), To: name, Amount: opening, Note: "opening balance"})
	return nil
}

// Balance returns the balance of an account.
func (l *Ledger) Balance(name string) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	balance, ok := l.balances[name]
	if !ok {
		return 0, fmt.Errorf("%w: %s", ErrUnknownAccount, name)
	}
	return balance, nil
}

// Transfer moves amount from one account to another, or changes nothing.
func (l *Ledger) Transfer(from, to string, amount int64, note string) error {
	if amount <= 0 {
		return ErrInvalidAmount
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	source, ok := l.balances[from]
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownAccount, from)
	}
	if _, ok := l.balances[to]; !ok {
		return fmt.Errorf("%w: %s", ErrUnknownAccount, to)
	}
	if source < amount {
		return fmt.Errorf("%w: %s has %d, needs %d", ErrInsufficientFunds, from, source, amount)
	}
	l.balances[from] -= amount
	l.balances[to] += amount
	l.entries = append(l.entries, Entry{At: l.now(), From: from, To: to, Amount: amount, Note: note})
	return nil
}

// History returns the entries that involve an account, oldest first.
func (l *Ledger) History(name string) []Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	var found []Entry
	for _, entry := range l.entries {
		if entry.From == name || entry.To == name {
			found = append(found, entry)
		}
	}
	return found
}

// Total is the sum of all balances; transfers never change it.
func (l *Ledger) Total() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var sum int64
	for _, balance := range l.balances {
		sum += balance
	}
	return sum
}

// Report lists the accounts by name with their balances, one per line.
func (l *Ledger) Report() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	names := make([]string, 0, len(l.balances))
	for name := range l.balances {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, name := range names {
		fmt.Fprintf(&b, "%-12s %10.2f\n", name, float64(l.balances[name])/100)
	}
	return b.String()
}
