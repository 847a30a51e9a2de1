package router_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/router"
)

// TestReportViewIsPartOfComplaint keeps ReportView in step with Complaint:
// each of its fields has the name, type and JSON name of Complaint's, so a
// stored complaint decodes into it as into Complaint, and ReportView()
// copies each of them.
func TestReportViewIsPartOfComplaint(t *testing.T) {
	vt, ct := reflect.TypeFor[router.ReportView](), reflect.TypeFor[router.Complaint]()
	var c router.Complaint
	cv := reflect.ValueOf(&c).Elem()
	for f := range vt.Fields() {
		cf, ok := ct.FieldByName(f.Name)
		switch {
		case !ok:
			t.Errorf("Complaint has no field %s", f.Name)
			continue
		case cf.Type != f.Type:
			t.Errorf("%s is a %s in ReportView, a %s in Complaint", f.Name, f.Type, cf.Type)
			continue
		case cf.Tag.Get("json") != f.Tag.Get("json"):
			t.Errorf("%s is %q in ReportView's JSON, %q in Complaint's", f.Name, f.Tag.Get("json"), cf.Tag.Get("json"))
		}
		setSomething(t, cv.FieldByIndex(cf.Index))
	}
	view := reflect.ValueOf(c.ReportView())
	for f := range vt.Fields() {
		if got, want := view.FieldByIndex(f.Index).Interface(), cv.FieldByName(f.Name).Interface(); !reflect.DeepEqual(got, want) {
			t.Errorf("ReportView().%s = %v, want %v", f.Name, got, want)
		}
	}
}

// setSomething gives a field a value other than its zero.
func setSomething(t *testing.T, v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("x-" + v.Type().Name())
	case reflect.Int, reflect.Int64:
		v.SetInt(7)
	case reflect.Slice:
		v.Set(reflect.ValueOf([]string{"response"}))
	case reflect.Struct:
		v.Set(reflect.ValueOf(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)))
	default:
		t.Fatalf("no test value for a %s", v.Type())
	}
}
