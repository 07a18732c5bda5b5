package smtest

import (
	"crypto/rand"
	"math/big"
	"strings"
	"time"
)

// GetRandomPassword, as the API reference describes it: PasswordLength 1 to
// 4096 (default 32); lowercase and uppercase letters, digits and the
// punctuation below unless excluded (ExcludeLowercase, ExcludeUppercase,
// ExcludeNumbers, ExcludePunctuation, ExcludeCharacters); the space only
// with IncludeSpace; and, unless RequireEachIncludedType is false, at least
// one character of every type left in. Characters are drawn with
// crypto/rand.

// punctuation is the set the API reference lists for ExcludePunctuation.
const punctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"

func (s *Server) getRandomPasswordOp(body []byte, _ time.Time) (any, *awsError) {
	var req getRandomPasswordRequest
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	length := int64(32)
	if req.PasswordLength != nil {
		length = *req.PasswordLength
		if length < 1 || length > 4096 {
			return nil, errValidation("Value '%d' at 'passwordLength' failed to satisfy constraint: Member must have value between 1 and 4096", length)
		}
	}
	if e := checkLen("excludeCharacters", req.ExcludeCharacters, 0, 4096, false); e != nil {
		return nil, e
	}
	on := func(b *bool) bool { return b != nil && *b }
	exclude := ""
	if req.ExcludeCharacters != nil {
		exclude = *req.ExcludeCharacters
	}
	keep := func(set string) string {
		return strings.Map(func(r rune) rune {
			if strings.ContainsRune(exclude, r) {
				return -1
			}
			return r
		}, set)
	}
	var types []string
	for _, t := range []struct {
		set string
		off bool
	}{
		{"abcdefghijklmnopqrstuvwxyz", on(req.ExcludeLowercase)},
		{"ABCDEFGHIJKLMNOPQRSTUVWXYZ", on(req.ExcludeUppercase)},
		{"0123456789", on(req.ExcludeNumbers)},
		{punctuation, on(req.ExcludePunctuation)},
	} {
		if t.off {
			continue
		}
		if k := keep(t.set); k != "" {
			types = append(types, k)
		}
	}
	all := strings.Join(types, "")
	if on(req.IncludeSpace) && !strings.ContainsRune(exclude, ' ') {
		all += " "
	}
	if all == "" {
		return nil, errInvalidParameter("The password can't be generated because every character type is excluded.")
	}
	require := req.RequireEachIncludedType == nil || *req.RequireEachIncludedType
	if require && int64(len(types)) > length {
		return nil, errInvalidParameter("The password length is too short to include a character of each included type.")
	}
	pw := make([]byte, length)
	for i := range pw {
		pw[i] = pick(all)
	}
	if require {
		// One character of each type at distinct random positions.
		pos := perm(int(length))
		for i, t := range types {
			pw[pos[i]] = pick(t)
		}
	}
	return getRandomPasswordResponse{RandomPassword: string(pw)}, nil
}

// pick returns a uniformly random byte of set.
func pick(set string) byte {
	n, err := rand.Int(rand.Reader, big.NewInt(int64(len(set))))
	if err != nil {
		panic(err) // crypto/rand does not fail (Go 1.24+)
	}
	return set[n.Int64()]
}

// perm returns a uniformly random permutation of [0, n).
func perm(n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	for i := n - 1; i > 0; i-- {
		j, err := rand.Int(rand.Reader, big.NewInt(int64(i+1)))
		if err != nil {
			panic(err)
		}
		p[i], p[j.Int64()] = p[j.Int64()], p[i]
	}
	return p
}
