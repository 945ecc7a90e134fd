// .torrent decoding (supervisor/torrent_file) and the transfer store (supervisor/transfer_store):
// single- and multi-file torrents, the info_hash (SHA-1 of the bencoded info dict, BEP 3),
// malformed input, and registrations that survive a restart of the store.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "supervisor/torrent_file.hpp"
#include "supervisor/transfer_store.hpp"
#include "worker/bencode.hpp"

namespace shoal::supervisor {
namespace {

using worker::http::BencodeWriter;

std::string sha1_hex(const std::string& bytes) {
  uint8_t md[20];
  unsigned int n = 0;
  EVP_Digest(bytes.data(), bytes.size(), md, &n, EVP_sha1(), nullptr);
  return info_hash_hex(md);
}

struct FileSpec {
  std::vector<std::string> path;
  int64_t length;
};

// The bencoded info dictionary of a torrent (BEP 3): one file when files.size() == 1 and its
// path has one component, else a multi-file torrent named `name`.
std::string info_dict(const std::string& name, const std::vector<FileSpec>& files, int64_t piece_length,
                      bool is_private = false) {
  int64_t total = 0;
  for (const FileSpec& f : files) total += f.length;
  std::string pieces(size_t((total + piece_length - 1) / piece_length) * 20, '\x5a');
  std::vector<char> buf(1 << 20);
  BencodeWriter w(buf.data(), buf.size());
  w.dict_begin();
  bool single = files.size() == 1 && files[0].path.size() == 1;
  if (!single) {
    w.key("files");
    w.list_begin();
    for (const FileSpec& f : files) {
      w.dict_begin();
      w.key("length");
      w.integer(f.length);
      w.key("path");
      w.list_begin();
      for (const std::string& c : f.path) w.string(c);
      w.list_end();
      w.dict_end();
    }
    w.list_end();
  } else {
    w.key("length");
    w.integer(files[0].length);
  }
  w.key("name");
  w.string(name);
  w.key("piece length");
  w.integer(piece_length);
  w.key("pieces");
  w.string(pieces);
  if (is_private) {
    w.key("private");
    w.integer(1);
  }
  w.dict_end();
  return std::string(buf.data(), w.finish());
}

std::string torrent(const std::string& announce, const std::string& info) {
  return "d8:announce" + std::to_string(announce.size()) + ":" + announce + "4:info" + info + "e";
}

TEST(TorrentFile, SingleFile) {
  std::string info = info_dict("artifact.tar", {{{"artifact.tar"}, 1000000}}, 262144, true);
  TorrentMeta m;
  std::string why;
  ASSERT_TRUE(decode_torrent(torrent("http://tracker.example:6969/announce", info), &m, &why)) << why;
  EXPECT_EQ(info_hash_hex(m.info_hash), sha1_hex(info));
  EXPECT_EQ(m.name, "artifact.tar");
  EXPECT_EQ(m.total_length, 1000000u);
  EXPECT_EQ(m.piece_length, 262144u);
  ASSERT_EQ(m.files.size(), 1u);
  EXPECT_EQ(m.files[0].path, "artifact.tar");
  EXPECT_EQ(m.announce, "http://tracker.example:6969/announce");
  EXPECT_TRUE(m.is_private);
}

TEST(TorrentFile, MultiFile) {
  std::string info = info_dict("release-42", {{{"bin", "app"}, 70000}, {{"etc", "app.conf"}, 300}, {{"README"}, 12}}, 32768);
  TorrentMeta m;
  std::string why;
  ASSERT_TRUE(decode_torrent(torrent("udp://[::1]:6969/announce", info), &m, &why)) << why;
  EXPECT_EQ(info_hash_hex(m.info_hash), sha1_hex(info));
  EXPECT_EQ(m.name, "release-42");
  EXPECT_EQ(m.total_length, 70312u);
  ASSERT_EQ(m.files.size(), 3u);
  EXPECT_EQ(m.files[0].path, "release-42/bin/app");
  EXPECT_EQ(m.files[1].length, 300u);
  EXPECT_FALSE(m.is_private);
}

TEST(TorrentFile, MalformedInputIsAClearError) {
  std::string good = torrent("http://t/a", info_dict("x", {{{"x"}, 10}}, 16384));
  const std::vector<std::string> bad = {
      "",                                           // empty
      "not bencode at all",                         // garbage
      good.substr(0, good.size() / 2),              // truncated
      "d8:announce3:abce",                          // no info dict
      "d4:infoi5ee",                                // info is not a dict
      "li1ei2ee",                                   // a list, not a dict
      torrent("a", "d4:name1:x12:piece lengthi16384e6:pieces3:abce"),  // pieces not a multiple of 20
      std::string(kMaxTorrentFileBytes + 1, 'd'),   // too large
  };
  for (const std::string& b : bad) {
    TorrentMeta m;
    m.name = "unchanged";
    std::string why;
    EXPECT_FALSE(decode_torrent(b, &m, &why)) << b.substr(0, 60);
    EXPECT_FALSE(why.empty());
    EXPECT_EQ(m.name, "unchanged");
  }
  std::string why;
  TorrentMeta m;
  EXPECT_FALSE(decode_torrent("", &m, &why));
  EXPECT_EQ(why, "empty file");
  EXPECT_FALSE(decode_torrent("garbage", &m, &why));
  EXPECT_NE(why.find("not a valid .torrent (BEP 3 metainfo)"), std::string::npos) << why;
}

class TransferStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/shoal-transfers-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    dir_ = root_ + "/state";
  }
  void TearDown() override { std::system(("rm -rf '" + root_ + "'").c_str()); }
  std::string root_, dir_;
};

TEST_F(TransferStoreTest, AddListFindRemoveAndSurviveARestart) {
  TransferStore s;
  std::vector<std::string> skipped;
  std::string why;
  ASSERT_TRUE(s.open(dir_, &skipped, &why)) << why;  // creates the directory
  EXPECT_TRUE(skipped.empty());
  std::string a = torrent("http://t/a", info_dict("app-1.0.tar", {{{"app-1.0.tar"}, 5000}}, 16384));
  std::string b = torrent("http://t/a", info_dict("db-2.1", {{{"x", "y"}, 10}, {{"z"}, 20}}, 16384));
  const Transfer* t = nullptr;
  ASSERT_EQ(s.add(a, &t, &why), TransferStore::AddResult::added) << why;
  EXPECT_EQ(t->meta.name, "app-1.0.tar");
  std::string hex_a = info_hash_hex(t->meta.info_hash);
  EXPECT_EQ(t->path, dir_ + "/" + hex_a + ".torrent");
  ASSERT_EQ(s.add(b, &t, &why), TransferStore::AddResult::added) << why;
  EXPECT_EQ(s.add(a, &t, &why), TransferStore::AddResult::already_registered);
  EXPECT_EQ(s.add("junk", &t, &why), TransferStore::AddResult::invalid);
  EXPECT_EQ(s.size(), 2u);
  // By name and by hex info_hash (any case); the stored bytes come back unchanged.
  ASSERT_NE(s.find_by_key("app-1.0.tar"), nullptr);
  std::string upper = hex_a;
  for (char& c : upper) c = char(toupper(c));
  EXPECT_EQ(s.find_by_key(upper), s.find_by_key("app-1.0.tar"));
  EXPECT_EQ(s.find_by_key("nope"), nullptr);
  std::string back;
  ASSERT_TRUE(s.read_torrent(*s.find_by_key("db-2.1"), &back, &why)) << why;
  EXPECT_EQ(back, b);

  // A new store on the same directory (shoald restarted) has both; a stray bad file is
  // reported and kept, not deleted.
  std::ofstream(dir_ + "/garbage.torrent") << "not a torrent";
  TransferStore again;
  ASSERT_TRUE(again.open(dir_, &skipped, &why)) << why;
  EXPECT_EQ(again.size(), 2u);
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_NE(skipped[0].find("garbage.torrent: not a valid .torrent"), std::string::npos) << skipped[0];
  EXPECT_EQ(access((dir_ + "/garbage.torrent").c_str(), F_OK), 0);
  EXPECT_GT(again.find_by_key("app-1.0.tar")->registered_at, 0);

  uint8_t h[20];
  memcpy(h, again.find_by_key("app-1.0.tar")->meta.info_hash, 20);
  EXPECT_TRUE(again.remove(h, &why));
  EXPECT_FALSE(again.remove(h, &why));  // not registered any more
  EXPECT_NE(access((dir_ + "/" + hex_a + ".torrent").c_str(), F_OK), 0);
  TransferStore third;
  skipped.clear();
  ASSERT_TRUE(third.open(dir_, &skipped, &why));
  EXPECT_EQ(third.size(), 1u);
  EXPECT_EQ(third.find_by_key("app-1.0.tar"), nullptr);
}

TEST_F(TransferStoreTest, AFileNamedAfterAnotherHashIsSkipped) {
  ASSERT_EQ(mkdir(dir_.c_str(), 0750), 0);
  std::string a = torrent("http://t/a", info_dict("a", {{{"a"}, 5}}, 16384));
  std::ofstream(dir_ + "/" + std::string(40, '0') + ".torrent") << a;
  TransferStore s;
  std::vector<std::string> skipped;
  std::string why;
  ASSERT_TRUE(s.open(dir_, &skipped, &why));
  EXPECT_EQ(s.size(), 0u);
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_NE(skipped[0].find("the file name is not its info_hash"), std::string::npos);
}

TEST_F(TransferStoreTest, UnusableDirectoryIsAnError) {
  std::ofstream(root_ + "/file") << "x";
  TransferStore s;
  std::vector<std::string> skipped;
  std::string why;
  EXPECT_FALSE(s.open(root_ + "/file/state", &skipped, &why));
  EXPECT_NE(why.find("cannot create"), std::string::npos) << why;
}

}  // namespace
}  // namespace shoal::supervisor
