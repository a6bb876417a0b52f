// Package i18n holds the message catalogs (English and Chinese) of the kiosk
// screens and formats amounts per language.
//
// Layout code never contains customer-visible literals: it asks T for a Key.
// Every key exists in both catalogs (a test checks it). Amounts are kept in
// minor units with an ISO 4217 exponent and formatted by Amount:
// English "CNY 1,000.00", Chinese "1,000.00元".
package i18n
