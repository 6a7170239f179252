// zlib from Debian's zlib1g-dev: gzip-compressed data files (HH-RLHF's *.jsonl.gz and the like).
#include <zlib.h>
