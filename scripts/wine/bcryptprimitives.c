/*
 * A stand-in for bcryptprimitives.dll, for running Go's Windows test
 * binaries under a Wine that lacks it (Wine 8 does). Since Go 1.24 the
 * runtime takes its random seed from ProcessPrng in this DLL and stops at
 * start-up when the DLL or the export is missing.
 *
 * Windows documents ProcessPrng as never failing; this one returns FALSE
 * if RtlGenRandom does, so a caller that checks (the Go runtime does) sees
 * the failure instead of using a buffer that was never filled.
 */
#include <windows.h>

/* RtlGenRandom: advapi32 exports it under this name only. */
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
	/* RtlGenRandom takes a ULONG; fill large requests in chunks. */
	while (length > 0) {
		ULONG n = length > 0x10000000 ? 0x10000000 : (ULONG)length;
		if (!SystemFunction036(data, n))
			return FALSE;
		data += n;
		length -= n;
	}
	return TRUE;
}
