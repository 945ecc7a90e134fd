// The exports of npm webrtc-polyfill that @thaunknown/simple-peer imports, from @roamhq/wrtc.
import wrtc from '@roamhq/wrtc'

export const RTCPeerConnection = wrtc.RTCPeerConnection
export const RTCSessionDescription = wrtc.RTCSessionDescription
export const RTCIceCandidate = wrtc.RTCIceCandidate
export default wrtc
