// m4fwd end to end over its real socket: three apps (uids) × several adapters, cross-app access,
// quotas, BUSY under overload, deadlines, malformed / oversized / truncated frames and unknown
// message types, kill -9 + restart, A/B firmware update and rollback, graceful SIGTERM.
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>

#include "../unit/fixture.h"
#include "base/mapped_file.h"
#include "daemon_harness.h"
#include "model/quantize.h"

using namespace m4;
using namespace m4::test;

namespace {

constexpr uid_t kAppA = 2001, kAppB = 2002, kAppC = 2003;

class ServiceTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        dir_ = temp_dir() + "/svc";
        std::filesystem::create_directories(dir_);
        ::chmod(temp_dir().c_str(), 0755);
        ::chmod(dir_.c_str(), 0777);
        fw_ = dir_ + "/fw.m4fw";
        write_firmware(fw_, tiny_config(), 1);
        fw2_ = dir_ + "/fw2.m4fw";
        write_firmware(fw2_, tiny_config(), 2);
        auto m = model::Model::load(fw_);
        ASSERT_TRUE(m.is_ok());
        for (int i = 0; i < 4; ++i) {
            adapter::Manifest man;
            man.modality = model::Modality::Imu;
            man.labels   = {"walk", "run", "sit"};
            man.targets  = adapter::expand_targets((*m)->config(), man.path, man.modality, "attn").value();
            man.lora_rank = 2, man.lora_alpha = 4;
            std::string p = dir_ + "/imu" + std::to_string(i) + ".m4a";
            ASSERT_TRUE(adapter::write_random_adapter(p, **m, man, 100 + i).is_ok());
            adapters_.push_back(read_file_bytes(p).value());
        }
    }
    void SetUp() override {
        if (::geteuid() != 0) GTEST_SKIP() << "needs root to run clients as other uids (CI runs as root)";
    }
    static std::string fresh_dir(const std::string & name) {
        std::string d = dir_ + "/" + name;
        std::filesystem::remove_all(d);
        std::filesystem::create_directories(d);
        ::chmod(d.c_str(), 0777);
        return d;
    }
    static v1::Infer imu_request(const std::string & adapter, int seed = 0) {
        v1::Infer req;
        req.set_adapter(adapter);
        auto * in = req.add_inputs();
        in->set_modality("imu");
        for (int i = 0; i < 20 * 6; ++i) in->mutable_signal()->add_values(std::sin(0.1f * i + seed));
        return req;
    }

    static inline std::string              dir_, fw_, fw2_;
    static inline std::vector<std::string> adapters_;
};

}  // namespace

TEST_F(ServiceTest, AppsSeeAndRunOnlyTheirOwnAdapters) {
    DaemonProcess d(fresh_dir("access"), fw_);
    ASSERT_TRUE(d.start());
    const std::string sock = d.socket();
    // App A registers two adapters and runs them; the daemon knows it by uid, not by its claims.
    EXPECT_EQ(as_uid(kAppA, [&] {
                  auto c = client::Client::connect(sock);
                  CHILD_CHECK(c.is_ok(), "connect");
                  CHILD_CHECK((*c)->hello().uid() == kAppA, "uid from SO_PEERCRED");
                  for (int i = 0; i < 2; ++i) {
                      auto r = (*c)->register_adapter("a" + std::to_string(i), adapters_[i]);
                      CHILD_CHECK(r.is_ok() && r->status() == v1::STATUS_OK, "register");
                  }
                  auto r = (*c)->infer(imu_request("a1"));
                  CHILD_CHECK(r.is_ok() && r->status() == v1::STATUS_OK, "infer own adapter");
                  CHILD_CHECK(r->infer().results(0).scores_size() == 3, "three labels");
                  CHILD_CHECK(r->infer().results(0).scores(0).label() != "", "label names");
                  return 0;
              }),
              0);
    // App B cannot see, run or remove them; its own adapter of the same name is independent.
    EXPECT_EQ(as_uid(kAppB, [&] {
                  auto c = client::Client::connect(sock);
                  CHILD_CHECK(c.is_ok(), "connect");
                  auto r = (*c)->infer(imu_request("a1"));
                  CHILD_CHECK(r.is_ok() && r->status() == v1::STATUS_NOT_FOUND, "another app's adapter is invisible");
                  auto rm = (*c)->remove_adapter("a0");
                  CHILD_CHECK(rm.is_ok() && rm->status() == v1::STATUS_NOT_FOUND, "cannot remove another app's adapter");
                  auto l = (*c)->list_adapters(true);
                  CHILD_CHECK(l.is_ok() && l->list_adapters().adapters_size() == 0, "lists nothing of app A");
                  auto reg = (*c)->register_adapter("a0", adapters_[3]);
                  CHILD_CHECK(reg.is_ok() && reg->status() == v1::STATUS_OK, "same name, own namespace");
                  v1::Request install;
                  install.mutable_install_firmware()->set_firmware("x");
                  auto ins = (*c)->call(install);
                  CHILD_CHECK(ins.is_ok() && ins->status() == v1::STATUS_PERMISSION_DENIED, "firmware install is admin-only");
                  return 0;
              }),
              0);
    // The admin publishes A's adapter as shared; then B (and C) may run it.
    auto admin = client::Client::connect(sock);
    ASSERT_TRUE(admin.is_ok());
    v1::Request pub;
    pub.mutable_publish_adapter()->set_app("uid" + std::to_string(kAppA));
    pub.mutable_publish_adapter()->set_name("a1");
    pub.mutable_publish_adapter()->set_shared(true);
    auto pr = (*admin)->call(pub);
    ASSERT_TRUE(pr.is_ok());
    EXPECT_EQ(pr->status(), v1::STATUS_OK) << pr->message();
    for (uid_t uid : {kAppB, kAppC})
        EXPECT_EQ(as_uid(uid, [&] {
                      auto c = client::Client::connect(sock);
                      CHILD_CHECK(c.is_ok(), "connect");
                      auto r = (*c)->infer(imu_request("shared/a1"));
                      CHILD_CHECK(r.is_ok() && r->status() == v1::STATUS_OK, "shared adapter runs");
                      return 0;
                  }),
                  0);
}

TEST_F(ServiceTest, QuotaRefusalKeepsEarlierAdapters) {
    DaemonProcess d(fresh_dir("quota"), fw_, R"({"quota_adapters": 2})");
    ASSERT_TRUE(d.start());
    EXPECT_EQ(as_uid(kAppA, [&] {
                  auto c = client::Client::connect(d.socket());
                  CHILD_CHECK(c.is_ok(), "connect");
                  for (int i = 0; i < 2; ++i)
                      CHILD_CHECK((*c)->register_adapter("q" + std::to_string(i), adapters_[i])->status() == v1::STATUS_OK,
                                  "within quota");
                  auto r = (*c)->register_adapter("q2", adapters_[2]);
                  CHILD_CHECK(r.is_ok() && r->status() == v1::STATUS_QUOTA_EXCEEDED, "third adapter refused");
                  CHILD_CHECK(r->message().find("quota") != std::string::npos, "message names the quota");
                  CHILD_CHECK((*c)->list_adapters(false)->list_adapters().adapters_size() == 2, "earlier ones kept");
                  CHILD_CHECK((*c)->infer(imu_request("q1"))->status() == v1::STATUS_OK, "and still served");
                  return 0;
              }),
              0);
}

// The byte quota: adapters of one app may take at most quota_bytes; replacing one counts its
// new size instead of the old one.
TEST_F(ServiceTest, ByteQuotaRefusesWhatWouldExceedIt) {
    const size_t size = adapters_[0].size();
    ASSERT_EQ(adapters_[1].size(), size);
    ASSERT_EQ(adapters_[2].size(), size);
    DaemonProcess d(fresh_dir("quota_bytes"), fw_, R"({"quota_bytes": )" + std::to_string(size * 5 / 2) + "}");
    ASSERT_TRUE(d.start());
    EXPECT_EQ(as_uid(kAppA, [&] {
                  auto c = client::Client::connect(d.socket());
                  CHILD_CHECK(c.is_ok(), "connect");
                  for (int i = 0; i < 2; ++i)
                      CHILD_CHECK((*c)->register_adapter("b" + std::to_string(i), adapters_[i])->status() == v1::STATUS_OK,
                                  "within the byte quota");
                  auto r = (*c)->register_adapter("b2", adapters_[2]);
                  CHILD_CHECK(r.is_ok() && r->status() == v1::STATUS_QUOTA_EXCEEDED, "third adapter refused by bytes");
                  CHILD_CHECK(r->message().find("bytes") != std::string::npos, "message names the byte limit");
                  auto rep = (*c)->register_adapter("b1", adapters_[2], /*replace=*/true);
                  CHILD_CHECK(rep.is_ok() && rep->status() == v1::STATUS_OK, "replacing one stays within the quota");
                  CHILD_CHECK((*c)->list_adapters(false)->list_adapters().adapters_size() == 2, "two adapters kept");
                  return 0;
              }),
              0);
}

TEST_F(ServiceTest, BadRegistrationsAreRefused) {
    DaemonProcess d(fresh_dir("badreg"), fw_);
    ASSERT_TRUE(d.start());
    auto c = client::Client::connect(d.socket());
    ASSERT_TRUE(c.is_ok());
    auto r = (*c)->register_adapter("../evil", adapters_[0]);
    EXPECT_EQ(r->status(), v1::STATUS_INVALID_ARGUMENT);
    std::string broken = adapters_[0];
    broken[broken.size() / 2] ^= 1;
    r = (*c)->register_adapter("broken", broken);
    EXPECT_EQ(r->status(), v1::STATUS_INVALID_ARGUMENT);
    EXPECT_NE(r->message().find("digest mismatch"), std::string::npos) << r->message();
    // An adapter trained for another firmware.
    auto other = model::Model::load(fw2_);
    ASSERT_TRUE(other.is_ok());
    adapter::Manifest man;
    man.modality = model::Modality::Imu;
    man.head_out = 2;
    std::string p = dir_ + "/foreign.m4a";
    ASSERT_TRUE(adapter::write_random_adapter(p, **other, man, 9).is_ok());
    r = (*c)->register_adapter("foreign", read_file_bytes(p).value());
    EXPECT_EQ(r->status(), v1::STATUS_INCOMPATIBLE) << r->message();
    EXPECT_EQ((*c)->list_adapters(false)->list_adapters().adapters_size(), 0);
}

// A firmware quantized from fw_ (m4fw quantize) takes fw_'s adapters when the daemon trusts its
// signature (the signed header vouches for the parent reference); unsigned, it refuses them.
TEST_F(ServiceTest, QuantizedSiblingTakesParentAdaptersOnlyWhenSignedByTheTrustedKey) {
    auto parent = model::Model::load(fw_);
    ASSERT_TRUE(parent.is_ok());
    auto w = model::quantized_sibling(**parent, DType::I8);
    ASSERT_TRUE(w.is_ok()) << w.status().message();
    PublicKey pk;
    SecretKey sk;
    ed25519_keypair(&pk, &sk);
    const std::string dir = fresh_dir("sibling"), key = dir + "/trusted.pub";
    std::ofstream(key) << to_hex(pk) << "\n";
    ASSERT_TRUE(w->write(dir + "/fw-i8-signed.m4fw", &sk).is_ok());
    ASSERT_TRUE(w->write(dir + "/fw-i8.m4fw").is_ok());
    {
        DaemonProcess d(dir + "/signed", dir + "/fw-i8-signed.m4fw", R"({"public_key": ")" + key + R"("})");
        std::filesystem::create_directories(dir + "/signed");
        ::chmod((dir + "/signed").c_str(), 0777);
        ASSERT_TRUE(d.start());
        auto c = client::Client::connect(d.socket());
        ASSERT_TRUE(c.is_ok());
        auto r = (*c)->register_adapter("parents", adapters_[0]);
        ASSERT_TRUE(r.is_ok());
        EXPECT_EQ(r->status(), v1::STATUS_OK) << r->message();
        // One name for one thing: the digest RegisterAdapter reports is the adapter's container
        // digest, the one `m4fw inspect` prints (it was the hash of the whole file).
        auto view = format::parse_container(reinterpret_cast<const uint8_t *>(adapters_[0].data()), adapters_[0].size(),
                                            "imu0.m4a", format::FileKind::Adapter);
        ASSERT_TRUE(view.is_ok());
        EXPECT_EQ(r->register_adapter().digest(), to_hex(view->digest));
        auto out = (*c)->infer(imu_request("parents"));
        ASSERT_TRUE(out.is_ok());
        EXPECT_EQ(out->status(), v1::STATUS_OK) << out->message();
    }
    DaemonProcess d(dir + "/unsigned", dir + "/fw-i8.m4fw");
    std::filesystem::create_directories(dir + "/unsigned");
    ::chmod((dir + "/unsigned").c_str(), 0777);
    ASSERT_TRUE(d.start());
    auto c = client::Client::connect(d.socket());
    ASSERT_TRUE(c.is_ok());
    auto r = (*c)->register_adapter("parents", adapters_[0]);
    ASSERT_TRUE(r.is_ok());
    EXPECT_EQ(r->status(), v1::STATUS_INCOMPATIBLE) << r->message();
    EXPECT_NE(r->message().find("not vouched for"), std::string::npos) << r->message();
}

TEST_F(ServiceTest, MalformedFramesGetErrorsAndOthersKeepBeingServed) {
    DaemonProcess d(fresh_dir("frames"), fw_);
    ASSERT_TRUE(d.start());
    auto good = client::Client::connect(d.socket());
    ASSERT_TRUE(good.is_ok());
    ASSERT_EQ((*good)->register_adapter("a", adapters_[0])->status(), v1::STATUS_OK);

    // 1. A frame that is not a Request: answered INVALID_ARGUMENT, the connection stays usable.
    int                fd = raw_connect(d.socket());
    wire::FrameReader  reader;
    wire::Frame        f;
    ASSERT_TRUE(wire::write_frame(fd, std::string("\xff\xff\xff garbage", 12)).is_ok());
    ASSERT_TRUE(wire::read_frame(fd, reader, &f, 5000).is_ok());
    v1::Response r;
    ASSERT_TRUE(r.ParseFromString(f.bytes));
    EXPECT_EQ(r.status(), v1::STATUS_INVALID_ARGUMENT);
    // 2. An unknown / empty message type.
    v1::Request empty;
    empty.set_id(7);
    ASSERT_TRUE(wire::write_frame(fd, empty.SerializeAsString()).is_ok());
    ASSERT_TRUE(wire::read_frame(fd, reader, &f, 5000).is_ok());
    ASSERT_TRUE(r.ParseFromString(f.bytes));
    EXPECT_EQ(r.id(), 7u);
    EXPECT_EQ(r.status(), v1::STATUS_INVALID_ARGUMENT);
    EXPECT_NE(r.message().find("unknown"), std::string::npos);
    // A field number from a future protocol version is skipped by protobuf: still an empty body.
    std::string future = empty.SerializeAsString() + std::string("\xfa\x06\x00", 3);  // field 111, empty bytes
    ASSERT_TRUE(wire::write_frame(fd, future).is_ok());
    ASSERT_TRUE(wire::read_frame(fd, reader, &f, 5000).is_ok());
    ASSERT_TRUE(r.ParseFromString(f.bytes));
    EXPECT_EQ(r.status(), v1::STATUS_INVALID_ARGUMENT);
    ::close(fd);

    // 3. An oversized frame length: answered, then the connection is closed.
    fd            = raw_connect(d.socket());
    uint32_t huge = 0x7fffffff;
    ASSERT_EQ(::write(fd, &huge, 4), 4);
    wire::FrameReader reader2;
    ASSERT_TRUE(wire::read_frame(fd, reader2, &f, 5000).is_ok());
    ASSERT_TRUE(r.ParseFromString(f.bytes));
    EXPECT_EQ(r.status(), v1::STATUS_INVALID_ARGUMENT);
    EXPECT_NE(r.message().find("exceeds"), std::string::npos);
    char c;
    EXPECT_EQ(::read(fd, &c, 1), 0);  // closed by the daemon
    ::close(fd);

    // 4. A truncated frame, then the client vanishes.
    fd           = raw_connect(d.socket());
    uint32_t len = 1000;
    ASSERT_EQ(::write(fd, &len, 4), 4);
    ASSERT_EQ(::write(fd, "abc", 3), 3);
    ::close(fd);

    // 5. Meanwhile the well-behaved client is served as before.
    auto ok = (*good)->infer(imu_request("a"));
    ASSERT_TRUE(ok.is_ok());
    EXPECT_EQ(ok->status(), v1::STATUS_OK);
    // And bad input inside a valid request is an error for that request only.
    v1::Infer bad = imu_request("a");
    bad.mutable_inputs(0)->mutable_signal()->add_values(1.0f);  // 121 values: not rows of 6
    auto br       = (*good)->infer(bad);
    EXPECT_EQ(br->status(), v1::STATUS_INVALID_ARGUMENT);
    EXPECT_NE(br->message().find("input 0"), std::string::npos) << br->message();
}

TEST_F(ServiceTest, BusyUnderOverloadAndDeadlines) {
    DaemonProcess d(fresh_dir("busy"), fw_, R"({"max_queued_items": 8, "max_pending_per_app": 8, "max_batch_items": 4})");
    ASSERT_TRUE(d.start());
    auto c = client::Client::connect(d.socket());
    ASSERT_TRUE(c.is_ok());
    ASSERT_EQ((*c)->register_adapter("a", adapters_[0])->status(), v1::STATUS_OK);
    // Pipeline 64 generation-free requests of 2 items without reading: the queue holds 8 items.
    int                fd = raw_connect(d.socket());
    const int          n  = 64;
    for (int i = 0; i < n; ++i) {
        v1::Request r;
        r.set_id(1000 + i);
        v1::Infer req = imu_request("a", i);
        *req.add_inputs() = req.inputs(0);
        if (i == n - 1) req.set_deadline_ms(1);  // the last one cannot start within 1 ms
        *r.mutable_infer() = req;
        ASSERT_TRUE(wire::write_frame(fd, r.SerializeAsString()).is_ok());
    }
    wire::FrameReader reader;
    int               ok = 0, busy = 0, expired = 0, other = 0;
    for (int i = 0; i < n; ++i) {
        wire::Frame  f;
        v1::Response r;
        ASSERT_TRUE(wire::read_frame(fd, reader, &f, 30000).is_ok()) << "reply " << i;
        ASSERT_TRUE(r.ParseFromString(f.bytes));
        if (r.status() == v1::STATUS_OK) ++ok;
        else if (r.status() == v1::STATUS_BUSY) {
            ++busy;
            EXPECT_GT(r.retry_after_ms(), 0u);
        } else if (r.status() == v1::STATUS_DEADLINE_EXCEEDED) ++expired;
        else ++other;
    }
    ::close(fd);
    EXPECT_GT(ok, 0);
    EXPECT_GT(busy, 0);
    EXPECT_EQ(other, 0);
    EXPECT_EQ(ok + busy + expired, n);  // every request answered, none dropped
    // (Deadline expiry and cancellation are checked deterministically in test_scheduler.cpp.)
    // The daemon is still healthy.
    EXPECT_EQ((*c)->infer(imu_request("a"))->status(), v1::STATUS_OK);
}

TEST_F(ServiceTest, Kill9LosesNoAcknowledgedAdapter) {
    std::string dir = fresh_dir("kill9");
    {
        DaemonProcess d(dir, fw_);
        ASSERT_TRUE(d.start());
        auto c = client::Client::connect(d.socket());
        ASSERT_TRUE(c.is_ok());
        for (int i = 0; i < 3; ++i) ASSERT_EQ((*c)->register_adapter("k" + std::to_string(i), adapters_[i])->status(), v1::STATUS_OK);
        // Fire registrations without waiting and kill -9 the daemon while they are in flight.
        int fd = raw_connect(d.socket());
        for (int i = 0; i < 20; ++i) {
            v1::Request r;
            r.set_id(i + 1);
            r.mutable_register_adapter()->set_name("late" + std::to_string(i));
            r.mutable_register_adapter()->set_adapter(adapters_[i % 4]);
            (void)wire::write_frame(fd, r.SerializeAsString());
        }
        d.kill(SIGKILL);
        ::close(fd);
    }
    DaemonProcess d(dir, fw_);
    ASSERT_TRUE(d.start());
    auto c = client::Client::connect(d.socket());
    ASSERT_TRUE(c.is_ok());
    auto l = (*c)->list_adapters(false);
    ASSERT_TRUE(l.is_ok());
    std::set<std::string> names;
    for (const auto & a : l->list_adapters().adapters()) {
        names.insert(a.name());
        EXPECT_TRUE(a.compatible()) << a.name();
        // Every visible adapter is whole: it loads, verifies and runs.
        EXPECT_EQ((*c)->infer(imu_request(a.name()))->status(), v1::STATUS_OK) << a.name();
    }
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(names.count("k" + std::to_string(i))) << "acknowledged k" << i << " lost";
    for (const auto & e : std::filesystem::recursive_directory_iterator(d.state()))
        EXPECT_EQ(e.path().filename().string().rfind(".tmp-", 0), std::string::npos) << e.path();
}

TEST_F(ServiceTest, FirmwareUpdateChecksAdaptersAndRollsBack) {
    DaemonProcess d(fresh_dir("update"), fw_);
    ASSERT_TRUE(d.start());
    auto c = client::Client::connect(d.socket());
    ASSERT_TRUE(c.is_ok());
    ASSERT_EQ((*c)->register_adapter("old", adapters_[0])->status(), v1::STATUS_OK);
    const std::string first = (*c)->hello().firmware_fingerprint();
    v1::Request       install;
    install.mutable_install_firmware()->set_firmware(read_file_bytes(fw2_).value());
    install.mutable_install_firmware()->set_activate(true);
    auto r = (*c)->call(install);
    ASSERT_TRUE(r.is_ok());
    ASSERT_EQ(r->status(), v1::STATUS_OK) << r->message();
    EXPECT_EQ(r->install_firmware().slot(), "b");
    ASSERT_EQ(r->install_firmware().needs_retraining_size(), 1);
    EXPECT_EQ(r->install_firmware().needs_retraining(0), "uid0/old");
    EXPECT_NE(r->install_firmware().fingerprint(), first);
    auto inc = (*c)->infer(imu_request("old"));
    EXPECT_EQ(inc->status(), v1::STATUS_INCOMPATIBLE) << inc->message();
    v1::Request rb;
    rb.mutable_rollback();
    auto back = (*c)->call(rb);
    ASSERT_EQ(back->status(), v1::STATUS_OK) << back->message();
    EXPECT_EQ(back->rollback().fingerprint(), first);
    EXPECT_EQ((*c)->infer(imu_request("old"))->status(), v1::STATUS_OK);
    // A corrupt firmware is refused and the running one stays.
    std::string bad = read_file_bytes(fw2_).value();
    bad[bad.size() - 200] ^= 1;
    install.mutable_install_firmware()->set_firmware(bad);
    auto refused = (*c)->call(install);
    EXPECT_EQ(refused->status(), v1::STATUS_INVALID_ARGUMENT);
    EXPECT_EQ((*c)->infer(imu_request("old"))->status(), v1::STATUS_OK);
}

TEST_F(ServiceTest, SigtermAnswersInFlightRequests) {
    DaemonProcess d(fresh_dir("sigterm"), fw_);
    ASSERT_TRUE(d.start());
    int fd = raw_connect(d.socket());
    const int n = 6;
    for (int i = 0; i < n; ++i) {
        v1::Request r;
        r.set_id(i + 1);
        r.mutable_infer()->set_max_new_tokens(40);
        r.mutable_infer()->add_inputs()->set_text("generate something long enough to be in flight");
        ASSERT_TRUE(wire::write_frame(fd, r.SerializeAsString()).is_ok());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    int st = d.kill(SIGTERM);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "status " << st;
    wire::FrameReader reader;
    int               answered = 0;
    for (;;) {
        wire::Frame f;
        if (!wire::read_frame(fd, reader, &f, 5000).is_ok()) break;
        v1::Response r;
        ASSERT_TRUE(r.ParseFromString(f.bytes));
        EXPECT_TRUE(r.status() == v1::STATUS_OK || r.status() == v1::STATUS_CANCELLED) << r.message();
        ++answered;
    }
    ::close(fd);
    EXPECT_EQ(answered, n);  // finished or cancelled with an error — never dropped silently
}

TEST_F(ServiceTest, CExampleRegistersAndClassifiesThroughTheCAbi) {
    DaemonProcess d(fresh_dir("cabi"), fw_);
    ASSERT_TRUE(d.start());
    // An IMU window as a CSV file, passed to the daemon as a descriptor by m4_infer_file.
    std::string csv = dir_ + "/window.csv";
    {
        std::ofstream f(csv);
        for (int i = 0; i < 20; ++i) f << i * 0.1 << ",0.2,9.8,0.01,0.02,0.03\n";
    }
    std::string cmd = std::string(M4_EXAMPLE_PATH) + " --socket " + d.socket() + " " + dir_ + "/imu0.m4a mine imu " +
                      csv + " 2>&1";
    FILE * p = ::popen(cmd.c_str(), "r");
    ASSERT_NE(p, nullptr);
    std::string out;
    char        buf[512];
    while (std::fgets(buf, sizeof buf, p)) out += buf;
    int st = ::pclose(p);
    EXPECT_EQ(WEXITSTATUS(st), 0) << out;
    EXPECT_NE(out.find("connected as app uid0"), std::string::npos) << out;
    EXPECT_TRUE(out.find("walk") != std::string::npos || out.find("run") != std::string::npos) << out;
    // A bad input comes back as a status with a message, not a crash.
    std::string bad = std::string(M4_EXAMPLE_PATH) + " --socket " + d.socket() + " " + dir_ + "/imu0.m4a mine imu /nonexistent 2>&1";
    p               = ::popen(bad.c_str(), "r");
    out.clear();
    while (std::fgets(buf, sizeof buf, p)) out += buf;
    st = ::pclose(p);
    EXPECT_EQ(WEXITSTATUS(st), 1) << out;
    EXPECT_NE(out.find("cannot open"), std::string::npos) << out;
}
