/*
 * bcryptprimitives.dll for Wine 8, which lacks it. Go >= 1.24 programs on
 * Windows get their random bytes from ProcessPrng in this DLL and refuse to
 * start without it. This one fills the buffer through RtlGenRandom
 * (SystemFunction036 in advapi32), which Wine has. Test harness only: it is
 * copied into the system32 of the private Wine prefix the tests use
 * (internal/testenv/wine), never shipped.
 *
 * x86_64-w64-mingw32-gcc -shared -O2 -s -o bcryptprimitives.dll processprng.c -ladvapi32
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
	while (len > 0) {
		ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
		if (!SystemFunction036(data, n))
			return FALSE;
		data += n;
		len -= n;
	}
	return TRUE;
}
