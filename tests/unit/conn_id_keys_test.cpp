// tests/unit/conn_id_keys_test.cpp — the cluster key file of connection ids
// (conf/conn_id_key_file: parser, file checks, fingerprints) and the seqlock that publishes the
// keys to the socket workers (shm/conn_id_keys.hpp). Files are made with mkstemp under /tmp.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>

#include "conf/conn_id_key_file.hpp"
#include "shm/conn_id_keys.hpp"

namespace shoal {
namespace {

const char* const kKeyA = "00112233445566778899aabbccddeeff";
const char* const kKeyB = "0F1E2D3C4B5A69788796A5B4C3D2E1F0";

// A temporary file with `text` and `mode`, removed at the end of the test.
class TempFile {
 public:
  TempFile(const std::string& text, mode_t mode) {
    char name[] = "/tmp/shoal-keyfile-XXXXXX";
    int fd = mkstemp(name);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(write(fd, text.data(), text.size()), ssize_t(text.size()));
    close(fd);
    path_ = name;
    EXPECT_EQ(chmod(name, mode), 0);
  }
  ~TempFile() { unlink(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// ---- the key file --------------------------------------------------------------------------

TEST(KeyFile, CurrentAndPreviousKeyWithCommentsAndCrlf) {
  conf::KeyFileResult r = conf::parse_key_file(std::string("# cluster key, rotated 2026-12-06\n\n  ") + kKeyA +
                                                   "  # current\r\n" + kKeyB + "\t# previous\n",
                                               "k");
  ASSERT_TRUE(r.ok()) << r.error;
  ASSERT_EQ(r.count, 2u);
  EXPECT_EQ(r.keys[0][0], 0x00);
  EXPECT_EQ(r.keys[0][15], 0xff);
  EXPECT_EQ(r.keys[1][0], 0x0f);
  EXPECT_EQ(r.keys[1][15], 0xf0);
  conf::KeyFileResult one = conf::parse_key_file(kKeyA, "k");  // no newline at the end
  ASSERT_TRUE(one.ok()) << one.error;
  EXPECT_EQ(one.count, 1u);
}

TEST(KeyFile, ErrorsNameTheLineAndTheProblem) {
  EXPECT_EQ(conf::parse_key_file("# c\n00112233445566778899aabbccddeefg\n", "k").error,
            "k:2: not a hex digit 'g' at column 32");
  EXPECT_EQ(conf::parse_key_file("00112233445566778899aabbccddeef\n", "k").error,
            "k:1: expected 32 hex digits (16 bytes), got 31");
  EXPECT_EQ(conf::parse_key_file("00112233445566778899aabbccddeeff00\n", "k").error,
            "k:1: expected 32 hex digits (16 bytes), got 34");
  EXPECT_EQ(conf::parse_key_file("0011 2233445566778899aabbccddeeff\n", "k").error,
            "k:1: not a hex digit ' ' at column 5");
  EXPECT_EQ(conf::parse_key_file(std::string(kKeyA) + "\n" + kKeyB + "\n" + kKeyA + "\n", "k").error,
            "k:3: more than 2 keys (the current key and the previous one)");
  EXPECT_EQ(conf::parse_key_file("00000000000000000000000000000000\n", "k").error, "k:1: the key is all zeros");
  EXPECT_EQ(conf::parse_key_file("# nothing yet\n\n", "k").error,
            "k: no key (a line of 32 hex digits: openssl rand -hex 16)");
  EXPECT_EQ(conf::parse_key_file("", "k").error, "k: no key (a line of 32 hex digits: openssl rand -hex 16)");
}

TEST(KeyFile, ModeOpenToOthersIsRefusedLikeSsh) {
  TempFile world(std::string(kKeyA) + "\n", 0644);
  conf::KeyFileResult r = conf::load_key_file(world.path());
  EXPECT_EQ(r.error, world.path() + ": permissions 0644 are too open: the key file must not be accessible by others "
                                    "(chmod o-rwx " + world.path() + ")");
  TempFile writable(std::string(kKeyA) + "\n", 0602);
  EXPECT_FALSE(conf::load_key_file(writable.path()).ok());
  for (mode_t good : {0600, 0640, 0400}) {
    TempFile f(std::string(kKeyA) + "\n" + kKeyB + "\n", good);
    conf::KeyFileResult ok = conf::load_key_file(f.path());
    EXPECT_TRUE(ok.ok()) << ok.error;
    EXPECT_EQ(ok.count, 2u);
  }
}

TEST(KeyFile, MissingDirectoryAndHugeFilesAreRefused) {
  EXPECT_EQ(conf::load_key_file("/nonexistent/cluster.key").error, "/nonexistent/cluster.key: cannot open: No such file or directory");
  char dir[] = "/tmp/shoal-keydir-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  chmod(dir, 0700);
  EXPECT_EQ(conf::load_key_file(dir).error, std::string(dir) + ": not a regular file");
  rmdir(dir);
  TempFile huge(std::string(70000, '#'), 0600);
  EXPECT_EQ(conf::load_key_file(huge.path()).error, huge.path() + ": larger than 65536 bytes: not a key file");
  TempFile bad("xyz\n", 0600);
  EXPECT_EQ(conf::load_key_file(bad.path()).error, bad.path() + ":1: not a hex digit 'x' at column 1");
}

TEST(KeyFile, CheckForShoaldTestNamesTheSetting) {
  conf::Config cfg;
  EXPECT_EQ(conf::check_key_file_config(cfg), "");
  TempFile world(std::string(kKeyA) + "\n", 0644);
  cfg.udp_connection_id_key_file = world.path();
  EXPECT_EQ(conf::check_key_file_config(cfg).rfind("udp.connection_id_key_file " + world.path() + ": permissions 0644", 0), 0u);
}

TEST(KeyFile, FingerprintIsShortStableAndDiffersPerKey) {
  conf::KeyFileResult r = conf::parse_key_file(std::string(kKeyA) + "\n" + kKeyB + "\n", "k");
  ASSERT_TRUE(r.ok());
  std::string a = conf::key_fingerprint(r.keys[0]), b = conf::key_fingerprint(r.keys[1]);
  EXPECT_EQ(a.size(), 8u);
  EXPECT_EQ(a, conf::key_fingerprint(r.keys[0]));
  EXPECT_NE(a, b);
  EXPECT_EQ(std::string(kKeyA).find(a), std::string::npos);  // not the key's own digits
  EXPECT_EQ(a, "a8faed6a") << "SHA-256 of the 16 bytes 00 11 .. ff begins a8faed6a (sha256sum)";
}

// ---- the seqlock -------------------------------------------------------------------------------

shm::ConnIdKeySet filled(uint8_t byte, uint32_t count) {
  shm::ConnIdKeySet s;
  s.count = count;
  std::memset(s.keys, 0, sizeof s.keys);
  for (uint32_t k = 0; k < count; k++) std::memset(s.keys[k], byte + k, 16);
  return s;
}

TEST(ConnIdKeysSeqlock, PublishThenReadGivesTheKeysAndANewSequence) {
  shm::ConnIdKeys block{};
  shm::ConnIdKeySet out;
  uint64_t seq = 99;
  EXPECT_FALSE(shm::read_conn_id_keys(&block, &out, &seq));  // count 0: nothing published yet
  shm::publish_conn_id_keys(&block, filled(0x10, 2), true);
  ASSERT_TRUE(shm::read_conn_id_keys(&block, &out, &seq));
  EXPECT_EQ(seq, 2u);
  EXPECT_EQ(out.count, 2u);
  EXPECT_EQ(out.keys[0][7], 0x10);
  EXPECT_EQ(out.keys[1][7], 0x11);
  EXPECT_EQ(block.from_file, 1u);
  shm::publish_conn_id_keys(&block, filled(0x40, 1), false);
  ASSERT_TRUE(shm::read_conn_id_keys(&block, &out, &seq));
  EXPECT_EQ(seq, 4u);
  EXPECT_EQ(out.count, 1u);
  EXPECT_EQ(block.keys[2], 0u);  // the second key's words are cleared
  EXPECT_EQ(shm::conn_id_keys_seq(&block), 4u);
}

TEST(ConnIdKeysSeqlock, AReaderNeverTakesAKeyWhileTheWriterIsInTheMiddle) {
  shm::ConnIdKeys block{};
  shm::publish_conn_id_keys(&block, filled(0x10, 1), true);
  block.seq = 3;  // as if the supervisor stopped between its two stores
  shm::ConnIdKeySet out = filled(0x77, 1);
  uint64_t seq = 0;
  EXPECT_FALSE(shm::read_conn_id_keys(&block, &out, &seq, 1000));
  EXPECT_EQ(out.keys[0][0], 0x77);  // untouched: the caller keeps its keys
}

// A writer thread alternating two key sets while a reader copies them: every copy the reader
// accepts is one whole set (all 32 bytes from the same publication), never a mix.
TEST(ConnIdKeysSeqlock, ConcurrentReadsAreNeverTorn) {
  shm::ConnIdKeys block{};
  shm::publish_conn_id_keys(&block, filled(0x10, 2), true);
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (uint32_t i = 0; !stop.load(std::memory_order_relaxed); i++)
      shm::publish_conn_id_keys(&block, i & 1 ? filled(0x10, 2) : filled(0xa0, 2), true);
  });
  int accepted = 0, torn = 0;
  for (int i = 0; i < 200000; i++) {
    shm::ConnIdKeySet out;
    uint64_t seq = 0;
    if (!shm::read_conn_id_keys(&block, &out, &seq, 1)) continue;
    accepted++;
    uint8_t base = out.keys[0][0];
    bool whole = (base == 0x10 || base == 0xa0) && out.count == 2;
    for (int k = 0; k < 2; k++)
      for (int b = 0; b < 16; b++) whole = whole && out.keys[k][b] == uint8_t(base + k);
    torn += !whole;
  }
  stop = true;
  writer.join();
  EXPECT_GT(accepted, 0);
  EXPECT_EQ(torn, 0);
}

}  // namespace
}  // namespace shoal
