# Shortcuts for those who have make; each is the same as `python3 tasks.py <target>`.
.PHONY: setup run test lint bench
setup run test lint bench:
	python3 tasks.py $@
