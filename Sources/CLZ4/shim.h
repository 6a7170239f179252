// LZ4 frame format from Debian's liblz4-dev (caches and checkpoints).
#include <lz4frame.h>
