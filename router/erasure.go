package router

import "strings"

// ErasedKeyPrefix starts the customer key of a complaint whose customer data
// was erased (on request or by the retention period): "erased:<pseudonym>".
const ErasedKeyPrefix = "erased:"

// Erased reports whether the complaint's customer data was erased. Work
// that was in flight at the erasure (a reply being delivered) is still
// recorded on it, but without anything that names the customer again.
func (c Complaint) Erased() bool { return strings.HasPrefix(c.CustomerKey, ErasedKeyPrefix) }
