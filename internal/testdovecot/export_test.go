package testdovecot

// StartOnPort starts a server on a given port (tests of the port handling).
var StartOnPort = startOn
