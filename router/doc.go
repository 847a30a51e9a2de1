// Package router is forgetmenot's domain core: complaints, messages, owners and
// the rules that bind them. It threads each inbound message onto its complaint,
// gives every new complaint one named owner, and carries out the lifecycle
// (close, reassign, reopen) as guarded, atomic changes handed to a Store.
//
// The package knows nothing of Redis, HTTP, Slack or mail: it declares the small
// interfaces it needs (Store, Directory) and the adapters live elsewhere.
package router
