#pragma once
// HL7 v2 acknowledgements (docs/hl7.md): original mode AA / AE / AR, or enhanced mode CA / CE /
// CR when the message set MSH-15. One ERR segment per issue, with its HL7 table 0357 code, its
// location and a human message. Pure: the caller passes the time and the ACK's own control id.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "iraewatch/ingest/hl7_mapper.hpp"
#include "iraewatch/ingest/hl7_message.hpp"

namespace iraewatch::ingest {

enum class AckKind { accept, error, reject };  // AA/CA, AE/CE, AR/CR

// "AA", "AE", "AR", or with `enhanced` "CA", "CE", "CR".
std::string_view ack_code(AckKind kind, bool enhanced);

// The acknowledgement decided by a mapping: reject when the message was refused, error when some
// items were not used, accept otherwise.
AckKind ack_kind(const Hl7Mapped& mapped);

struct AckHeader {
  std::string application = "IRAEWATCH";  // MSH-3 of the ACK
  std::string facility;                   // MSH-4 of the ACK
  std::string control_id;                 // MSH-10 of the ACK (unique per ACK)
  std::int64_t now_ms = 0;                // MSH-7
};

// Builds the ACK for `message` (nullptr when it could not be parsed: the ACK then echoes no
// control id). `text` goes to MSA-3 (e.g. why it was rejected); issues become ERR segments.
// Segments end with CR, delimiters are the standard |^~\&.
std::string build_ack(const hl7::Message* message, AckKind kind, bool enhanced, const std::vector<Hl7Issue>& issues,
                      std::string_view text, const AckHeader& header);

// The text of an HL7 table 0357 code ("Data type error", ...).
std::string_view describe(Hl7Error code);

}  // namespace iraewatch::ingest
