import HoneKit
print(honeVersion)
