package cli_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// Export and erase from the command line, through the daemon's API on real
// Redis: found through the webhook's customer id too, refused while open,
// forced, then nothing left but the pseudonym and the audit.
func TestCustomersExportAndEraseFromTheCommandLine(t *testing.T) {
	base := startDaemon(t)
	id1 := ingest(t, base, `{"source_id":"priv-1","customer":{"id":"shop-778812","name":"Jan Jansen","email":"jan@voorbeeld.nl"},"subject":"Wasmachine","body":"Mijn wasmachine lekt."}`)
	id2 := ingest(t, base, `{"source_id":"priv-2","customer":{"name":"Piet","email":"piet@anders.example"},"body":"Factuur klopt niet."}`)

	code, out, errOut := run("customers", "export", "webhook:shop-778812", "--format", "text")
	if code != 0 || !strings.Contains(out, "Mijn wasmachine lekt.") || !strings.Contains(out, id1) || strings.Contains(out, "Factuur") {
		t.Fatalf("export --format text: %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = run("customers", "export", "jan@voorbeeld.nl")
	var ex struct {
		Complaints []struct {
			Complaint struct{ ID string } `json:"complaint"`
		} `json:"complaints"`
		WebhookIDs []string `json:"webhook_ids"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &ex) != nil || len(ex.Complaints) != 1 || ex.Complaints[0].Complaint.ID != id1 || len(ex.WebhookIDs) != 1 {
		t.Fatalf("export (JSON): %d\n%s%s", code, out, errOut)
	}
	code, _, errOut = run("customers", "export", "not an address")
	if code != 1 || !strings.Contains(errOut, "customer") {
		t.Fatalf("export of nonsense: %d %q", code, errOut)
	}

	code, _, errOut = run("customers", "erase", "jan@voorbeeld.nl", "--reason", "verzoek per brief")
	if code != 1 || !strings.Contains(errOut, "open complaints") || !strings.Contains(errOut, "409") {
		t.Fatalf("erase of open complaints without --force: %d %q", code, errOut)
	}
	code, out, errOut = run("customers", "erase", "jan@voorbeeld.nl", "--reason", "verzoek per brief", "--force", "--category", "delivery", "--as", "anna")
	if code != 0 || !strings.Contains(out, "Erased: 1 complaint(s)") || !strings.Contains(out, "e-mails already sent") || !strings.Contains(out, "erased on request") {
		t.Fatalf("erase --force: %d\n%s%s", code, out, errOut)
	}
	code, out, _ = run("customers", "export", "jan@voorbeeld.nl", "--format", "text")
	if code != 0 || !strings.Contains(out, "0 complaint(s)") {
		t.Fatalf("export after erasure: %d\n%s", code, out)
	}
	code, out, _ = run("complaints", "show", id1)
	if code != 0 || strings.Contains(out, "Jansen") || strings.Contains(out, "wasmachine") || !strings.Contains(out, "erased") {
		t.Fatalf("the erased complaint: %d\n%s", code, out)
	}
	code, out, _ = run("complaints", "show", id2)
	if code != 0 || !strings.Contains(out, "Factuur klopt niet.") {
		t.Fatalf("the other customer's complaint: %d\n%s", code, out)
	}
	code, out, _ = run("customers", "erasures")
	if code != 0 || !strings.Contains(out, "request by anna: 1 complaint(s) "+id1) {
		t.Fatalf("erasures: %d\n%s", code, out)
	}

	// The API needs the token like the rest of /v1.
	resp, err := http.Get(base + "/v1/customers/jan@voorbeeld.nl/export")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("export without the token: %d", resp.StatusCode)
	}
}
