package wire

// Message type indicators used by the system (ISO 8583:1987).
const (
	MTINetMgmtRequest   = "0800"
	MTINetMgmtResponse  = "0810"
	MTIFinancialRequest = "0200"
	MTIFinancialResp    = "0210"
	MTIAdvice           = "0220"
	MTIAdviceResp       = "0230"
	MTIReversal         = "0420"
	MTIReversalResp     = "0430"
	// MTIReconRequest and MTIReconResponse are the acquirer
	// reconciliation request and its answer (ISO 8583:1987 class 05): the
	// ATM asks the host for its totals of the terminal for one business
	// day (Reconciliation, docs/protocol.md §7.7).
	MTIReconRequest  = "0500"
	MTIReconResponse = "0510"
)

// Field numbers and what this system puts in them. docs/protocol.md has the
// table per message type (mandatory, optional, encrypted, MAC'd).
const (
	FieldMTI             = 0
	FieldProcessingCode  = 3   // n6: 010000 cash withdrawal (cardless)
	FieldAmount          = 4   // n12: amount in minor units
	FieldTransmissionDT  = 7   // n10: MMDDhhmmss UTC
	FieldSTAN            = 11  // n6: systems trace audit number
	FieldLocalTime       = 12  // n6: hhmmss
	FieldLocalDate       = 13  // n4: MMDD
	FieldSettlementDate  = 15  // n4: MMDD, the business day a 0500/0510 reconciles
	FieldAcquirerID      = 32  // n..11: acquiring institution ID
	FieldRRN             = 37  // an12: retrieval reference number
	FieldAuthCode        = 38  // an6: authorization ID response
	FieldResponseCode    = 39  // an2: response code
	FieldTerminalID      = 41  // ans8: card acceptor terminal ID (the ATM's ID)
	FieldTerminalLoc     = 43  // ans40: terminal name and location
	FieldAdditionalData  = 48  // ans...999: key exchange block in 08xx
	FieldSignOnChallenge = 53  // an16: sign-on challenge (16 hex digits) in the 0810 to a sign-on and the 0800/301 that confirms it
	FieldCurrency        = 49  // n3: ISO 4217 numeric currency code
	FieldSettlementCurr  = 50  // n3: ISO 4217 numeric currency of the totals of a 0500/0510
	FieldPINBlock        = 52  // b8: credential, encrypted end to end phone->host; opaque to proxy and ATM
	FieldQRPayload       = 62  // ans...999: QR payload text; ENCRYPTED with the link data key
	FieldNetMgmtCode     = 70  // n3: 001 sign-on, 002 sign-off, 161 key request, 162 key change, 301 echo
	FieldDebitsNumber    = 76  // n10: 0510, approved withdrawals (debits) of the day
	FieldDebitsRevNumber = 77  // n10: 0510, reversals applied to them
	FieldDebitsAmount    = 88  // n16: 0510, amount of the approved withdrawals
	FieldDebitsRevAmount = 89  // n16: 0510, amount the reversals credited back
	FieldOriginalData    = 90  // n42: original MTI, STAN, transmission date-time, acquirer, forwarder
	FieldReplacementAmts = 95  // an42: replacement amounts (first 12 digits: amount actually dispensed)
	FieldMACKeyKCV       = 96  // an6: KCV of the MAC key that made this message's MAC (key rollover); set by Protector.Seal
	FieldNetSettlement   = 97  // x+n16: 0510, net amount: D (debit) or C (credit), then 16 digits
	FieldReceipt         = 63  // ans...999: the customer's receipt (receipt.Encode), ATM->proxy->phone in an approved 0210
	FieldCustomerID      = 120 // ans...999: customer identifier; ENCRYPTED with the link data key
	FieldDispenseNonce   = 121 // ans...999: dispenser command nonce (32 hex), ATM->host in 0200
	FieldDispenseToken   = 122 // ans...999: XFS4IoT end-to-end dispense token, host->ATM in 0210
	FieldDeviceID        = 123 // ans...999: the phone's device ID (DeviceIDLength hex digits), phone->proxy->ATM->host in 0200; ENCRYPTED with the link data key
	FieldAdviceTotals    = 124 // n26: 0510, completion advices applied: number n10, amount n16 (private use)
	FieldMAC64           = 64  // b8 as 16 hex: MAC when no secondary bitmap
	FieldMAC128          = 128 // b8 as 16 hex: MAC when a secondary bitmap is present (always, since 96 is)
)

// Network management information codes (field 70).
const (
	NetSignOn     = "001"
	NetSignOff    = "002"
	NetKeyRequest = "161"
	NetKeyChange  = "162"
	NetEcho       = "301"
	// NetOutOfService and NetInService (ATM → proxy, link P) say that the
	// terminal stopped or resumed taking customers; field 48 of the first
	// names the reason. This system's codes (protocol.md §5).
	NetOutOfService = "281"
	NetInService    = "282"
)

// Processing codes (field 3).
const ProcCashWithdrawal = "010000"

// Response codes (field 39).
const (
	RCApproved           = "00"
	RCDoNotHonour        = "05"
	RCInvalidTransaction = "12"
	RCInvalidAmount      = "13"
	RCFormatError        = "30" // a mandatory field missing or malformed
	RCInvalidAccount     = "14"
	RCInsufficientFunds  = "51"
	RCExpired            = "54"
	RCIncorrectPIN       = "55"
	RCExceedsLimit       = "61"
	RCIssuerInoperative  = "91"
	RCDuplicate          = "94"
	RCSystemMalfunction  = "96"
	// RCSecurityViolation (63) answers a message whose MAC fails, where an
	// answer is sent at all.
	RCSecurityViolation = "63"
	// RCPhoneNotBound (57, "transaction not permitted to cardholder")
	// answers a withdrawal whose phone (field 123) is not bound to the
	// customer (field 120), or that carries no device ID, when the host
	// requires binding (docs/binding.md).
	RCPhoneNotBound = "57"
	// RCPartialDispense (not a standard code in field 39 for the phone) is
	// not used: a partial dispense answers 00 with field 95 set.
)

// ResponseText is the meaning of a field 39 response code in plain words,
// for people reading a tool's output or a log ("" for an unknown code).
func ResponseText(rc string) string {
	return responseTexts[rc]
}

var responseTexts = map[string]string{
	RCApproved:           "approved",
	RCDoNotHonour:        "do not honour (the account is blocked)",
	RCInvalidTransaction: "invalid transaction (a used or foreign QR code, or a request the ATM cannot take)",
	RCInvalidAmount:      "invalid amount (outside the ATM's limits, or not payable with the notes it holds)",
	RCInvalidAccount:     "unknown account",
	RCFormatError:        "format error (a field missing or malformed)",
	RCInsufficientFunds:  "insufficient funds",
	RCPhoneNotBound:      "this phone is not bound to the customer: bind it first with a verification code (docs/binding.md)",
	RCExpired:            "expired (the QR code timed out)",
	RCIncorrectPIN:       "incorrect PIN",
	RCExceedsLimit:       "exceeds the withdrawal limit",
	RCSecurityViolation:  "security violation (a MAC or key check failed)",
	"65":                 "too many refused requests from this phone: wait and try again",
	"75":                 "PIN tries exceeded",
	RCIssuerInoperative:  "the ATM or the bank cannot be reached (nothing was paid)",
	RCDuplicate:          "duplicate (this request was already answered)",
	RCSystemMalfunction:  "system malfunction (nothing was paid, or the amount is being reversed)",
}
