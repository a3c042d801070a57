// FaceGate's thin C ABI over dlib's two face detectors.
//
// Why this file exists: the `dlib-face-recognition` crate wraps detection but
// throws away the detection scores and offers no upsampling. FaceGate reports
// a score per face and upsamples small images to find small faces, so the two
// detector calls live here. Landmarks and the ResNet encoder still go through
// the crate.
//
// Rules of this ABI: no C++ exception crosses it (every entry point catches
// everything and returns -1 with a message); images come in as tightly packed
// RGB8 rows owned by the caller; detections are written into a caller-owned
// array and the total count is returned.

#include <dlib/dnn.h>
#include <dlib/image_processing/frontal_face_detector.h>
#include <dlib/image_transforms.h>

#include <cstdint>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

namespace {

// The MMOD network definition from dlib's dnn_mmod_face_detection_ex.cpp:
// it must match the serialized mmod_human_face_detector.dat exactly.
template <long num_filters, typename SUBNET>
using con5d = dlib::con<num_filters, 5, 5, 2, 2, SUBNET>;
template <long num_filters, typename SUBNET>
using con5 = dlib::con<num_filters, 5, 5, 1, 1, SUBNET>;
template <typename SUBNET>
using downsampler = dlib::relu<dlib::affine<con5d<32, dlib::relu<dlib::affine<con5d<32, dlib::relu<dlib::affine<con5d<16, SUBNET>>>>>>>>>;
template <typename SUBNET>
using rcon5 = dlib::relu<dlib::affine<con5<45, SUBNET>>>;
using mmod_net = dlib::loss_mmod<dlib::con<1, 9, 9, 1, 1, rcon5<rcon5<rcon5<downsampler<dlib::input_rgb_image_pyramid<dlib::pyramid_down<6>>>>>>>>;

void set_error(char* err, size_t err_len, const char* msg) {
    if (err != nullptr && err_len > 0) {
        std::strncpy(err, msg, err_len - 1);
        err[err_len - 1] = '\0';
    }
}

dlib::matrix<dlib::rgb_pixel> to_matrix(const uint8_t* rgb, size_t width, size_t height) {
    dlib::matrix<dlib::rgb_pixel> img(height, width);
    const uint8_t* p = rgb;
    for (size_t y = 0; y < height; ++y) {
        for (size_t x = 0; x < width; ++x) {
            img(y, x) = dlib::rgb_pixel(p[0], p[1], p[2]);
            p += 3;
        }
    }
    return img;
}

}  // namespace

extern "C" {

struct fg_detection {
    double left;
    double top;
    double right;
    double bottom;
    double score;
};

}  // extern "C"

namespace {

// The caller's image as a dlib matrix, doubled `upsample` times.
dlib::matrix<dlib::rgb_pixel> prepared(const uint8_t* rgb, size_t width, size_t height,
                                        uint32_t upsample) {
    dlib::matrix<dlib::rgb_pixel> img = to_matrix(rgb, width, height);
    dlib::pyramid_down<2> pyr;
    for (uint32_t i = 0; i < upsample; ++i) {
        dlib::pyramid_up(img, pyr);
    }
    return img;
}

// Writes up to `cap` detections, mapped back from the upsampled image to
// the caller's coordinates (exclusive right/bottom), and returns the total.
template <typename Det>
int64_t emit(const std::vector<Det>& dets, uint32_t upsample, fg_detection* out, size_t cap) {
    dlib::pyramid_down<2> pyr;
    for (size_t i = 0; i < dets.size() && i < cap; ++i) {
        dlib::drectangle r = dets[i].rect;
        for (uint32_t u = 0; u < upsample; ++u) {
            r = pyr.rect_down(r);
        }
        out[i] = fg_detection{r.left(), r.top(), r.right() + 1.0, r.bottom() + 1.0,
                              dets[i].detection_confidence};
    }
    return static_cast<int64_t>(dets.size());
}

}  // namespace

extern "C" {

void* fg_hog_new(char* err, size_t err_len) {
    try {
        return new dlib::frontal_face_detector(dlib::get_frontal_face_detector());
    } catch (const std::exception& e) {
        set_error(err, err_len, e.what());
    } catch (...) {
        set_error(err, err_len, "unknown C++ exception");
    }
    return nullptr;
}

void fg_hog_free(void* detector) {
    delete static_cast<dlib::frontal_face_detector*>(detector);
}

// Returns the number of detections found (which may exceed `cap`; only the
// first `cap` are written), or -1 on error with `err` filled.
int64_t fg_hog_detect(void* detector, const uint8_t* rgb, size_t width, size_t height,
                      uint32_t upsample, double adjust_threshold, fg_detection* out,
                      size_t cap, char* err, size_t err_len) {
    try {
        auto& det = *static_cast<dlib::frontal_face_detector*>(detector);
        std::vector<dlib::rect_detection> dets;
        det(prepared(rgb, width, height, upsample), dets, adjust_threshold);
        return emit(dets, upsample, out, cap);
    } catch (const std::exception& e) {
        set_error(err, err_len, e.what());
    } catch (...) {
        set_error(err, err_len, "unknown C++ exception");
    }
    return -1;
}

void* fg_cnn_open(const char* path, char* err, size_t err_len) {
    try {
        auto* net = new mmod_net();
        try {
            dlib::deserialize(path) >> *net;
        } catch (...) {
            delete net;
            throw;
        }
        return net;
    } catch (const std::exception& e) {
        set_error(err, err_len, e.what());
    } catch (...) {
        set_error(err, err_len, "unknown C++ exception");
    }
    return nullptr;
}

void fg_cnn_free(void* net) {
    delete static_cast<mmod_net*>(net);
}

int64_t fg_cnn_detect(void* net_ptr, const uint8_t* rgb, size_t width, size_t height,
                      uint32_t upsample, fg_detection* out, size_t cap, char* err,
                      size_t err_len) {
    try {
        auto& net = *static_cast<mmod_net*>(net_ptr);
        std::vector<dlib::mmod_rect> dets = net(prepared(rgb, width, height, upsample));
        return emit(dets, upsample, out, cap);
    } catch (const std::exception& e) {
        set_error(err, err_len, e.what());
    } catch (...) {
        set_error(err, err_len, "unknown C++ exception");
    }
    return -1;
}

}  // extern "C"
