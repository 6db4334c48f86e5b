// Package wineowner lets Windows test binaries under Wine learn who owns
// the loopback sockets Wine 8 attributes to no process (see
// UseLinuxOwnersUnderWine, Windows only). Tests only; the shipped program
// never imports it.
package wineowner
