package i18n

import (
	"maps"
	"strconv"
	"strings"
)

// spoken holds the texts of the audio guidance (keys "say.*"): what the
// synthesizer reads for each screen. They are written to be heard, not
// read: no symbols, amounts and times in words the voices read well (see
// SpokenAmount and SpokenSeconds), a function key as "F 8" in Chinese
// (espeak-ng's Mandarin voice skips the digit of "F8"). They are merged
// into the catalogs, so T reads them and the catalog tests check them.
var spoken = map[Lang]map[Key]string{
	English: {
		"say.on":            "Audio guidance is on. The screen is dark for your privacy.",
		"say.off":           "Audio guidance is off.",
		"say.blank":         "Audio guidance is on: the screen is dark for your privacy.",
		"say.key":           "For %s, press F%d.",
		"say.welcome":       "Welcome. Cardless withdrawal: withdraw cash with your phone, no card needed.",
		"say.lang":          "Please choose your language. For English, press F%d.",
		"say.lang.cancel":   "To cancel, press F%d.",
		"say.amount":        "Choose an amount.",
		"say.amount.keypad": "Or type an amount in whole yuan on the keypad, then press Enter. The amount must be from %s to %s, in multiples of %s.",
		"say.entry":         "Amount typed: %s.",
		"say.entry.none":    "No amount typed.",
		"say.cannot":        "This amount cannot be paid: you asked for %s.",
		"say.qr":            "Scan the code on the screen with your bank app, to withdraw %s. In the app, choose Cardless withdrawal, scan the code, and check the amount.",
		"say.processing":    "Please wait. Your bank is authorizing your withdrawal of %s.",
		"say.take":          "Please take your cash, %s, from the cash slot. Notes not taken in time are taken back into the machine.",
		"say.complete":      "Transaction complete: %s paid. Thank you. Please count your cash.",
		"say.ref":           "Your reference is: %s.",
		"say.seconds":       "%d seconds",
		"say.second":        "1 second",
	},
	Chinese: {
		"say.on":            "语音引导已开启。为保护您的隐私，屏幕已变暗。",
		"say.off":           "语音引导已关闭。",
		"say.blank":         "语音引导已开启：为保护您的隐私，屏幕已变暗。",
		"say.key":           "%s，请按F %d键。",
		"say.welcome":       "欢迎使用无卡取款：用手机取现金，无需银行卡。",
		"say.lang":          "请选择语言。中文请按F %d键。",
		"say.lang.cancel":   "取消请按F %d键。",
		"say.amount":        "请选择金额。",
		"say.amount.keypad": "或在键盘上输入整元金额，然后按确认键。金额须在%s至%s之间，并为%s的整数倍。",
		"say.entry":         "已输入金额：%s。",
		"say.entry.none":    "未输入金额。",
		"say.cannot":        "无法支付此金额：您要取%s。",
		"say.qr":            "请用银行应用扫描屏幕上的二维码，取款%s。在应用中选择无卡取款，扫描二维码，并核对金额。",
		"say.processing":    "请稍候。您的银行正在授权您取款%s。",
		"say.take":          "请从出钞口取走您的现金%s。未及时取走的钞票将被收回。",
		"say.complete":      "交易完成：已支付%s。谢谢，请清点您的现金。",
		"say.ref":           "您的参考号是：%s。",
		"say.seconds":       "%d秒",
		"say.second":        "1秒",
	},
}

func init() {
	for l, m := range spoken {
		maps.Copy(catalogs[l], m)
	}
}

// currencyWords are the spoken names of the currencies the ATMs pay out.
var currencyWords = map[Lang]map[string]string{
	English: {"CNY": "yuan", "USD": "dollars", "EUR": "euros", "HKD": "Hong Kong dollars"},
	Chinese: {"CNY": "元", "USD": "美元", "EUR": "欧元", "HKD": "港元"},
}

// SpokenAmount is an amount of minor units as the synthesizer reads it
// well: digits without separators and the currency's name, the decimals
// only when there are any: English "1000 yuan", "12.50 dollars", Chinese
// "1000元". A currency without a spoken name is spelled by its code.
func SpokenAmount(l Lang, minor int64, currency string, exponent int) string {
	n := strings.ReplaceAll(Number(minor, exponent), ",", "")
	if i := strings.IndexByte(n, '.'); i >= 0 && strings.Trim(n[i+1:], "0") == "" {
		n = n[:i]
	}
	name, ok := currencyWords[l][currency]
	if !ok {
		name = Spell(currency)
	}
	if l == Chinese && ok {
		return n + name
	}
	return n + " " + name
}

// SpokenSeconds is a time left, in whole seconds, in words ("7 seconds",
// "7秒").
func SpokenSeconds(l Lang, secs int) string {
	if secs == 1 {
		return T(l, "say.second")
	}
	return T(l, "say.seconds", max(secs, 0))
}

// Spell separates the characters of s by spaces so that a reference
// ("123456789012") is read one character at a time, not as a number.
func Spell(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// FKey is function key n as it is spoken in l ("F8", Chinese "F 8").
func FKey(l Lang, n int) string {
	if l == Chinese {
		return "F " + strconv.Itoa(n)
	}
	return "F" + strconv.Itoa(n)
}
