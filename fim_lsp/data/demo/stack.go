// A stack of integers, used by `fim-lsp demo`.
package stack

import "errors"

type Stack struct {
	items []int
}

func (s *Stack) Push(value int) {
	█
}

func (s *Stack) Pop() (int, error) {
	if len(s.items) == 0 {
		return 0, errors.New("empty stack")
	}
	█
}
