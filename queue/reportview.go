package queue

import "github.com/forgetmenot/forgetmenot/router"

// decodeReportView decodes the fields of a stored complaint the report
// reads (a 28-day report decodes every complaint of the period; see
// decodeJSON). TestDecodeReportViewAgreesWithEncodingJSON and its fuzz
// target hold it to encoding/json.
func decodeReportView(data string) (router.ReportView, error) {
	if !isLegacyComplaint(data) {
		var r reportRecord
		if err := decodeJSON([]byte(data), &r); err != nil {
			return router.ReportView{}, err
		}
		return r.view(), nil
	}
	var v router.ReportView
	if err := decodeJSON([]byte(data), &v); err != nil {
		return router.ReportView{}, err
	}
	return v, nil
}
