// m4fwd against hostile apps, part 2 (issue 15): fairness and deadlines, private state, request
// limits, firmware install and slot recovery, non-finite inputs, one daemon per socket, shutdown
// under a stream of requests, the development key — and a storm of every attack at once while a
// well-behaved app measures its latency.
#include <dirent.h>
#include <poll.h>
#include <sys/socket.h>

#include "adversarial_fixture.h"

namespace {

// A 24-bit BMP of w x h pixels (a gradient): decoding and resizing it costs time in proportion.
std::string bmp(int w, int h) {
    const int   row = (w * 3 + 3) & ~3;
    std::string b(54 + static_cast<size_t>(row) * h, '\0');
    auto        le  = [&](size_t at, uint32_t v, int n) {
        for (int i = 0; i < n; ++i) b[at + i] = static_cast<char>(v >> (8 * i));
    };
    b[0] = 'B', b[1] = 'M';
    le(2, static_cast<uint32_t>(b.size()), 4), le(10, 54, 4), le(14, 40, 4), le(18, w, 4), le(22, h, 4);
    le(26, 1, 2), le(28, 24, 2), le(34, static_cast<uint32_t>(row) * h, 4);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) b[54 + static_cast<size_t>(y) * row + x * 3] = static_cast<char>((x + y) & 255);
    return b;
}

std::string write_temp(const std::string & path, const std::string & bytes) {
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
}

// Sends one request on a raw socket without waiting (pipelining); returns false on a send error.
bool send_request(int fd, const v1::Request & r, const std::vector<int> & fds = {}) {
    return wire::write_frame(fd, r.SerializeAsString(), fds).is_ok();
}

}  // namespace

// Attack 5: one app's heavy input must not delay another app, and a deadline is answered at the
// deadline even while the daemon is busy with someone else's work.
TEST_F(ServiceAdversarial, HeavyDecodingDelaysNoOtherAppAndDeadlinesAreKept) {
    DaemonProcess d(fresh_dir("fair"), fw_);
    ASSERT_TRUE(d.start());
    auto good = good_client(d);
    ASSERT_TRUE(good);
    std::string heavy = write_temp(dir_ + "/fair/heavy.bmp", bmp(3000, 3000));
    ::chmod(heavy.c_str(), 0644);
    v1::Request heavy_req;
    heavy_req.set_id(1);
    for (int i = 0; i < 4; ++i) {
        heavy_req.mutable_infer()->add_inputs()->set_modality("image");
        heavy_req.mutable_infer()->mutable_inputs(i)->set_fd_attached(true);
    }
    // App A (another uid) sends 4 inputs of 9 Mpixel each, decoded and resized on the prep pool;
    // it reports through a pipe when it sent and when its answer came.
    int p[2];
    ASSERT_EQ(::pipe(p), 0);
    const std::string sock = d.socket();
    pid_t             child = ::fork();
    if (child == 0) {
        ::close(p[0]);
        if (::setgid(kAppA) != 0 || ::setuid(kAppA) != 0) _exit(2);
        int fds[4];
        for (int & f : fds) f = ::open(heavy.c_str(), O_RDONLY | O_CLOEXEC);
        int att = raw_connect(sock);
        if (!send_request(att, heavy_req, {fds[0], fds[1], fds[2], fds[3]})) _exit(3);
        (void)::write(p[1], "s", 1);
        wire::FrameReader reader;
        wire::Frame       f;
        v1::Response      hr;
        if (!wire::read_frame(att, reader, &f, 60000).is_ok() || !hr.ParseFromString(f.bytes)) _exit(4);
        (void)::write(p[1], "d", 1);
        _exit(hr.status() == v1::STATUS_OK ? 0 : 5);
    }
    ::close(p[1]);
    char ev = 0;
    ASSERT_EQ(::read(p[0], &ev, 1), 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    // The other app's small request is answered while A's inputs are still being decoded.
    auto r = good->infer(imu_request("mine"));
    ASSERT_TRUE(r.is_ok());
    EXPECT_EQ(r->status(), v1::STATUS_OK);
    pollfd pf{p[0], POLLIN, 0};
    EXPECT_EQ(::poll(&pf, 1, 0), 0) << "the heavy request finished before the small one was answered";
    ASSERT_EQ(::read(p[0], &ev, 1), 1);
    EXPECT_EQ(ev, 'd');
    ::close(p[0]);
    int st = 0;
    ::waitpid(child, &st, 0);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
    int hfd[4];
    int att = -1;
    wire::Frame f;
    auto t0 = std::chrono::steady_clock::now();

    // With one prep thread, a request queued behind A's decoding is answered at its deadline.
    DaemonProcess d1(fresh_dir("fair1"), fw_, R"({"prep_threads": 1})");
    ASSERT_TRUE(d1.start());
    auto good1 = good_client(d1);
    ASSERT_TRUE(good1);
    for (int & fd : hfd) fd = ::open(heavy.c_str(), O_RDONLY | O_CLOEXEC);
    att = raw_connect(d1.socket());
    t0  = std::chrono::steady_clock::now();
    ASSERT_TRUE(send_request(att, heavy_req, {hfd[0], hfd[1], hfd[2], hfd[3]}));
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    v1::Infer late = imu_request("mine");
    late.set_deadline_ms(150);
    auto t1 = std::chrono::steady_clock::now();
    r       = good1->infer(late);
    const double late_ms = ms_since(t1);
    ASSERT_TRUE(r.is_ok());
    wire::FrameReader reader1;
    ASSERT_TRUE(wire::read_frame(att, reader1, &f, 60000).is_ok());
    const double heavy_ms = ms_since(t0);
    if (heavy_ms < 400) GTEST_SKIP() << "the heavy request took only " << heavy_ms << " ms on this machine";
    EXPECT_EQ(r->status(), v1::STATUS_DEADLINE_EXCEEDED) << r->message();
    EXPECT_GE(late_ms, 140);
    EXPECT_LT(late_ms, 400) << "the deadline was answered late (the heavy request took " << heavy_ms << " ms)";
    ::close(att);
    for (int fd : hfd) ::close(fd);
}

// Attack 6: another app's adapters, by the file system or through error messages.
TEST_F(ServiceAdversarial, StateIsPrivateAndErrorsNameNoDaemonPaths) {
    DaemonProcess d(fresh_dir("private"), fw_);
    ASSERT_TRUE(d.start());
    const std::string sock = d.socket(), state = d.state();
    EXPECT_EQ(as_uid(kAppA, [&] {
                  auto c = client::Client::connect(sock);
                  CHILD_CHECK(c.is_ok(), "connect");
                  auto r = (*c)->register_adapter("secret", read_file_bytes(imu_adapter_).value());
                  CHILD_CHECK(r.is_ok() && r->status() == v1::STATUS_OK, "register");
                  // A corrupt adapter: the error names the adapter, not where the daemon keeps it.
                  std::string bad = read_file_bytes(imu_adapter_).value();
                  bad[bad.size() / 2] ^= 1;
                  auto e = (*c)->register_adapter("broken", bad);
                  CHILD_CHECK(e.is_ok() && e->status() != v1::STATUS_OK, "corrupt adapter refused");
                  CHILD_CHECK(e->message().find(state) == std::string::npos, "no state path in the error");
                  CHILD_CHECK(e->message().find("/apps/") == std::string::npos, "no store layout in the error");
                  return 0;
              }),
              0);
    struct stat st {};
    ASSERT_EQ(::stat(state.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    std::string file = state + "/adapters/apps/" + std::to_string(kAppA) + "/secret.m4a";
    ASSERT_EQ(::stat(file.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    // Another uid can neither read the file nor list the apps.
    EXPECT_EQ(as_uid(kAppB, [&] {
                  CHILD_CHECK(::open(file.c_str(), O_RDONLY) < 0 && errno == EACCES, "adapter file unreadable");
                  CHILD_CHECK(::opendir((state + "/adapters/apps").c_str()) == nullptr, "app list unreadable");
                  return 0;
              }),
              0);
    d.kill(SIGTERM);
    // A state directory open to other users is refused at start-up, with the fix in the message.
    std::string open_dir = fresh_dir("open");
    std::filesystem::create_directories(open_dir + "/state");
    ::chmod((open_dir + "/state").c_str(), 0755);
    DaemonProcess o(open_dir, fw_);
    EXPECT_NE(o.start_expecting_exit(), -1);
    EXPECT_NE(o.log().find("chmod 700"), std::string::npos) << o.log();
}

// Attack 7: any number of inputs up to the limit, a clear error beyond it, and the CLI splits.
TEST_F(ServiceAdversarial, ManyInputsWorkUpToTheLimitAndTheCliSplits) {
    DaemonProcess d(fresh_dir("many"), fw_, R"({"max_inputs_per_request": 16})");
    ASSERT_TRUE(d.start());
    auto good = good_client(d);
    ASSERT_TRUE(good);
    EXPECT_EQ(good->hello().max_inputs_per_request(), 16u);
    std::string csv = dir_ + "/many/w.csv";
    {
        std::ofstream f(csv);
        for (int i = 0; i < 20; ++i) f << i * 0.1 << ",0.2,9.8,0.01,0.02,0.03\n";
    }
    v1::Infer        req;
    std::vector<int> fds;
    req.set_adapter("mine");
    for (int i = 0; i < 10; ++i) {
        auto * in = req.add_inputs();
        in->set_modality("imu");
        in->set_fd_attached(true);
        fds.push_back(::open(csv.c_str(), O_RDONLY | O_CLOEXEC));
    }
    auto r = good->infer(req, fds);
    ASSERT_TRUE(r.is_ok());
    EXPECT_EQ(r->status(), v1::STATUS_OK) << r->message();
    EXPECT_EQ(r->infer().results_size(), 10);
    for (int fd : fds) ::close(fd);
    v1::Infer too_many;
    too_many.set_adapter("mine");
    for (int i = 0; i < 17; ++i) *too_many.add_inputs() = imu_request("mine").inputs(0);
    r = good->infer(too_many);
    EXPECT_EQ(r->status(), v1::STATUS_INVALID_ARGUMENT);
    EXPECT_NE(r->message().find("limit is 16"), std::string::npos) << r->message();
    // The CLI sends 40 files as three requests and prints every result.
    std::string cmd = std::string(M4FW_PATH) + " infer --socket " + d.socket() + " --adapter mine";
    for (int i = 0; i < 40; ++i) cmd += " " + csv;
    FILE *      p = ::popen((cmd + " 2>&1").c_str(), "r");
    std::string out;
    char        buf[512];
    while (std::fgets(buf, sizeof buf, p)) out += buf;
    EXPECT_EQ(WEXITSTATUS(::pclose(p)), 0) << out;
    EXPECT_NE(out.find("[40]"), std::string::npos) << out;
    // A text file given to `m4fw infer` is read (and the CLI says so), not sent as its path.
    std::string notes = dir_ + "/many/notes.txt";
    std::ofstream(notes) << "the quick brown fox";
    p = ::popen((std::string(M4FW_PATH) + " infer --socket " + d.socket() + " --max-new-tokens 2 " + notes + " 2>&1").c_str(),
                "r");
    out.clear();
    while (std::fgets(buf, sizeof buf, p)) out += buf;
    EXPECT_EQ(WEXITSTATUS(::pclose(p)), 0) << out;
    EXPECT_NE(out.find("text read from the file " + notes + " (19 bytes)"), std::string::npos) << out;
}

// Attack 8 and 9: a firmware larger than a frame, installed by descriptor while serving; a
// corrupted active slot at start-up falls back to the other one.
TEST_F(ServiceAdversarial, LargeFirmwareInstallsByDescriptorAndACorruptSlotFallsBack) {
    std::string dir = fresh_dir("bigfw");
    std::string big = dir + "/big.m4fw";
    auto        cfg = tiny_config();
    cfg["backbone"] = nlohmann::json::parse(
        R"({"width": 512, "layers": 8, "heads": 8, "kv_heads": 8, "ffn": 2048, "max_seq": 64})");
    cfg["text"]["vocab_size"] = 200;
    write_firmware(big, cfg, 3);
    ASSERT_GT(std::filesystem::file_size(big), 100ull << 20);
    std::string first_fp;
    {
        DaemonProcess d(dir, fw_);
        ASSERT_TRUE(d.start());
        auto admin = client::Client::connect(d.socket());
        ASSERT_TRUE(admin.is_ok());
        first_fp = (*admin)->hello().firmware_fingerprint();
        auto app = good_client(d);
        ASSERT_TRUE(app);
        std::atomic<bool>   done{false};
        std::atomic<double> worst{0};
        std::atomic<int>    answered{0};
        std::thread         serving([&] {
            // (Once the new firmware is active, "mine" is INCOMPATIBLE: still an answer.)
            while (!done.load()) {
                auto t0 = std::chrono::steady_clock::now();
                auto r  = app->infer(imu_request("mine"));
                if (r.is_ok()) answered++;
                worst = std::max(worst.load(), ms_since(t0));
            }
        });
        int         fd = ::open(big.c_str(), O_RDONLY | O_CLOEXEC);
        v1::Request install;
        install.mutable_install_firmware()->set_fd_attached(true);
        install.mutable_install_firmware()->set_activate(true);
        auto r = (*admin)->call(install, {fd});
        ::close(fd);
        done = true;
        serving.join();
        ASSERT_TRUE(r.is_ok()) << r.status().message();
        ASSERT_EQ(r->status(), v1::STATUS_OK) << r->message();
        EXPECT_EQ(r->install_firmware().slot(), "b");
        EXPECT_TRUE(r->install_firmware().activated());
        EXPECT_GT(answered.load(), 0);
        EXPECT_LT(worst.load(), 2000) << "ms: the other app waited for the install";
        EXPECT_NE((*admin)->status()->status_reply().firmware_fingerprint(), first_fp);
        d.kill(SIGTERM);
    }
    // One flipped byte in the active slot (b): the daemon starts from slot a and says so.
    std::string slot_b = dir + "/state/firmware/b.m4fw";
    {
        std::fstream f(slot_b, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(-100, std::ios::end);
        char c = 0;
        f.read(&c, 1);
        f.seekp(-100, std::ios::end);
        c ^= 0x10;
        f.write(&c, 1);
    }
    DaemonProcess d(dir, fw_);
    ASSERT_TRUE(d.start()) << d.log();
    auto admin = client::Client::connect(d.socket());
    ASSERT_TRUE(admin.is_ok());
    auto s = (*admin)->status();
    ASSERT_TRUE(s.is_ok());
    EXPECT_EQ(s->status_reply().active_slot(), "a");
    EXPECT_EQ(s->status_reply().firmware_fingerprint(), first_fp);
    bool noticed = false;
    for (const auto & n : s->status_reply().notices()) noticed |= n.find("slot b failed verification") != std::string::npos;
    EXPECT_TRUE(noticed);
    EXPECT_NE(d.log().find("slot_fallback"), std::string::npos);
}

// Attack 10: non-finite values answered OK with NaN scores.
TEST_F(ServiceAdversarial, NonFiniteInputsAreRefusedForEveryModality) {
    DaemonProcess d(fresh_dir("nan"), fw_);
    ASSERT_TRUE(d.start());
    auto good = good_client(d);
    ASSERT_TRUE(good);
    auto r = good->infer(imu_request("mine", 7));
    EXPECT_EQ(r->status(), v1::STATUS_INVALID_ARGUMENT);
    EXPECT_NE(r->message().find("NaN"), std::string::npos) << r->message();
    for (const char * bad : {"nan", "inf", "-inf"}) {
        std::string csv;
        for (int i = 0; i < 20; ++i) csv += std::string(i == 3 ? bad : "0.5") + ",0.2,9.8,0.01,0.02,0.03\n";
        v1::Infer req;
        req.set_adapter("mine");
        req.add_inputs()->set_modality("imu");
        req.mutable_inputs(0)->set_encoded(csv);
        r = good->infer(req);
        EXPECT_EQ(r->status(), v1::STATUS_INVALID_ARGUMENT) << bad << ": " << r->message();
    }
    v1::Infer img;
    img.add_inputs()->set_modality("image");
    for (int i = 0; i < 8 * 8 * 3; ++i) img.mutable_inputs(0)->mutable_signal()->add_values(i == 5 ? INFINITY : 0.1f);
    r = good->infer(img);
    EXPECT_EQ(r->status(), v1::STATUS_INVALID_ARGUMENT);
    EXPECT_NE(r->message().find("infinite"), std::string::npos) << r->message();
    EXPECT_EQ(good->infer(imu_request("mine"))->status(), v1::STATUS_OK);
}

// Attack 11: a second daemon on the same socket; SIGTERM during a stream of pipelined requests.
TEST_F(ServiceAdversarial, OneDaemonPerSocketAndEveryAcceptedRequestIsAnswered) {
    std::string   dir = fresh_dir("lock");
    DaemonProcess first(dir, fw_);
    ASSERT_TRUE(first.start());
    // A second daemon (its own state) pointed at the first one's socket.
    std::string dir2 = fresh_dir("lock2");
    pid_t       pid = ::fork();
    if (pid == 0) {
        FILE * f = std::freopen((dir2 + "/rival.log").c_str(), "w", stderr);
        (void)f;
        ::execl(M4FWD_PATH, "m4fwd", "--socket", first.socket().c_str(), "--state-dir", (dir2 + "/state").c_str(),
                "--firmware", fw_.c_str(), nullptr);
        _exit(127);
    }
    int st = 0;
    ::waitpid(pid, &st, 0);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) != 0);
    std::ifstream     rl(dir2 + "/rival.log");
    std::stringstream ss;
    ss << rl.rdbuf();
    EXPECT_NE(ss.str().find("another m4fwd"), std::string::npos) << ss.str();
    auto c = client::Client::connect(first.socket());
    ASSERT_TRUE(c.is_ok()) << "the first daemon's socket is gone";
    ASSERT_EQ((*c)->register_adapter("a", read_file_bytes(imu_adapter_).value())->status(), v1::STATUS_OK);

    // A stream of pipelined requests, SIGTERM in the middle: the answered ids have no holes. The
    // client reads all along, as a real one would (a client that stops reading gets its replies
    // only until the daemon's drain bound of 5 s).
    int                fd = raw_connect(first.socket());
    std::atomic<bool>  stop{false};
    std::atomic<int>   sent{0};
    std::set<uint64_t> ids;
    std::map<int, int> statuses;
    std::thread        writer([&] {
        // Generation requests (slower than classification), so some are running, some queued and
        // some being prepared when SIGTERM arrives.
        for (int i = 1; i <= 3000 && !stop.load(); ++i) {
            v1::Request r;
            r.set_id(static_cast<uint64_t>(i));
            r.mutable_infer()->set_max_new_tokens(16);
            r.mutable_infer()->add_inputs()->set_text("generate a few tokens");
            if (!send_request(fd, r)) break;
            sent = i;
        }
    });
    std::thread reader_thread([&] {
        wire::FrameReader reader;
        for (;;) {
            wire::Frame f;
            if (!wire::read_frame(fd, reader, &f, 10000).is_ok()) break;
            v1::Response r;
            if (!r.ParseFromString(f.bytes)) break;
            EXPECT_TRUE(r.status() == v1::STATUS_OK || r.status() == v1::STATUS_CANCELLED ||
                        r.status() == v1::STATUS_UNAVAILABLE || r.status() == v1::STATUS_BUSY)
                << r.status() << " " << r.message();
            EXPECT_TRUE(ids.insert(r.id()).second) << "answered twice: " << r.id();
            statuses[r.status()]++;
        }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    ::kill(first.pid(), SIGTERM);
    reader_thread.join();
    stop = true;
    writer.join();
    ::close(fd);
    st = first.kill(0);  // reaps it
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
    ASSERT_FALSE(ids.empty());
    for (auto & [k, v] : statuses) std::printf("status %d: %d answers\n", k, v);
    std::string holes;
    for (uint64_t i = 1, shown = 0; i <= *ids.rbegin() && shown < 20; ++i)
        if (!ids.count(i)) holes += " " + std::to_string(i), ++shown;
    EXPECT_EQ(*ids.rbegin(), ids.size()) << "some accepted request got no answer (" << ids.size() << " answers, "
                                         << sent.load() << " sent); unanswered:" << holes;
}

// Attack 12: the development key signs anything, so trusting it is announced loudly.
TEST_F(ServiceAdversarial, TrustingTheDevelopmentKeyIsAnnounced) {
    std::string dir    = fresh_dir("devkey");
    std::string signed_fw = dir + "/signed.m4fw";
    auto        sk     = read_secret_key(M4_SOURCE_DIR "/firmware/dev.key");
    ASSERT_TRUE(sk.is_ok());
    write_firmware(signed_fw, tiny_config(), 1, DType::F32, &*sk);
    DaemonProcess d(dir, signed_fw, R"({"public_key": ")" M4_SOURCE_DIR R"(/firmware/dev.pub"})");
    ASSERT_TRUE(d.start()) << d.log();
    EXPECT_NE(d.log().find("development key"), std::string::npos) << d.log();
    auto admin = client::Client::connect(d.socket());
    ASSERT_TRUE(admin.is_ok());
    bool warned  = false;
    auto status  = (*admin)->status();
    ASSERT_TRUE(status.is_ok());
    for (const auto & n : status->status_reply().notices()) warned |= n.find("development key") != std::string::npos;
    EXPECT_TRUE(warned);
    // An app does not see operator notices.
    EXPECT_EQ(as_uid(kAppA, [&] {
                  auto c = client::Client::connect(d.socket());
                  CHILD_CHECK(c.is_ok(), "connect");
                  auto app_status = (*c)->status();
                  CHILD_CHECK(app_status.is_ok(), "status");
                  CHILD_CHECK(app_status->status_reply().notices_size() == 0, "no notices for apps");
                  return 0;
              }),
              0);
}
