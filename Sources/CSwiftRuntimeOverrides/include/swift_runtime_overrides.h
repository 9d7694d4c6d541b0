#ifndef MEDINFER_SWIFT_RUNTIME_OVERRIDES_H
#define MEDINFER_SWIFT_RUNTIME_OVERRIDES_H
/* Nothing to import: command_line.c only defines symbols the static Swift runtime looks
 * for at link time. The header exists because SwiftPM's C targets need one. */
#endif
