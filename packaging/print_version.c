/* Prints the version and ABI version of the libmedinfer.so it is linked against:
 * "0.1.0 1". The packaging checks it against VERSION and MEDINFER_ABI_VERSION. */
#include <stdio.h>

#include "medinfer.h"

int main(void) {
  printf("%s %d\n", medinfer_version(), medinfer_abi_version());
  return medinfer_abi_version() == MEDINFER_ABI_VERSION ? 0 : 1;
}
